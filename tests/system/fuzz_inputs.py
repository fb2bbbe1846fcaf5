#!/usr/bin/env python3
"""Deterministic fuzz inputs for tests/system/fuzz.sh (Python standard library only).

    fuzz_inputs.py images SEEDS OUT   SEEDS: lines "name<TAB>hex" (PNGs the extension made);
                                      OUT: COPY text lines "label<TAB>\\x<hex>": valid PNG, JPEG
                                      and WebP images written here, and corrupt variants of them
                                      and of the seeds (truncated, bytes flipped, headers that claim
                                      extreme dimensions with their CRC fixed, wrong magic, bombs)
    fuzz_inputs.py strip OUT          the images of the strip whose canvas would be 51 GB (one
                                      8192x4097 PNG beside 255 of 1x8192), and an 8192x1 and a 1x1
                                      PNG: uniform, so they compress to a few hundred kB; as
                                      "label<TAB>\\x<hex>" lines
    fuzz_inputs.py ckpt IN OUT        variants of an exported model checkpoint (IN: its hex) for
                                      synth_model_import, as "label<TAB>\\x<hex>" lines
    fuzz_inputs.py recv DIR OUT       binary COPY files (PGCOPY) of one embedding or synthquery
                                      field each under DIR, and OUT: "label<TAB>table<TAB>file"
    fuzz_inputs.py text OUT           text inputs of the embedding and synthquery types: COPY text
                                      lines "family<TAB>label<TAB>value"

Everything is derived from a fixed seed, so every run (and CI) sees the same bytes.
"""
import random
import struct
import sys
import zlib

SEED = 0x5EED_F022

# ---- PNG -----------------------------------------------------------------------------------------

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def ihdr(w, h, bd=8, ct=2, comp=0, filt=0, interlace=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bd, ct, comp, filt, interlace))


CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def pack_row(samples, bd):
    if bd == 8:
        return bytes(samples)
    if bd == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, n = bytearray(), 0, 0
    for s in samples:
        acc = (acc << bd) | s
        n += bd
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, row, prev, bpp):
    out = bytearray([kind])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i] if prev else 0
        c = prev[i - bpp] if prev and i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - pred) & 0xFF)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(w, h, pixel, ct=2, bd=8, interlace=0, filters=(0,), plte=None, trns=None, extra=b""):
    """pixel(x, y) -> tuple of samples (CHANNELS[ct] of them, each < 2**bd)."""
    bpp = max(1, CHANNELS[ct] * bd // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    k = 0
    for x0, y0, dx, dy in passes:
        xs = range(x0, w, dx)
        if not xs:
            continue
        prev = None
        for y in range(y0, h, dy):
            row = pack_row([s for x in xs for s in pixel(x, y)], bd)
            raw += filter_row(filters[k % len(filters)], row, prev, bpp)
            prev, k = row, k + 1
    body = ihdr(w, h, bd, ct, 0, 0, interlace)
    if plte is not None:
        body += chunk(b"PLTE", plte)
    if trns is not None:
        body += chunk(b"tRNS", trns)
    return PNG_SIG + body + extra + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")


def png_chunks(data):
    """[(offset, kind, length)] of a PNG's chunks, as far as they parse."""
    out, at = [], 8
    while at + 12 <= len(data):
        n = struct.unpack(">I", data[at:at + 4])[0]
        out.append((at, data[at + 4:at + 8], n))
        at += 12 + n
    return out


def fix_crcs(data):
    data = bytearray(data)
    for at, kind, n in png_chunks(bytes(data)):
        if at + 12 + n <= len(data):
            data[at + 8 + n:at + 12 + n] = struct.pack(">I", zlib.crc32(bytes(data[at + 4:at + 8 + n])))
    return bytes(data)


def with_ihdr(data, **fields):
    """A PNG with IHDR fields replaced (width, height, bd, ct, comp, filt, interlace), CRC fixed."""
    w, h, bd, ct, comp, filt, il = struct.unpack(">IIBBBBB", data[16:29])
    v = dict(w=w, h=h, bd=bd, ct=ct, comp=comp, filt=filt, interlace=il)
    v.update(fields)
    return data[:8] + ihdr(v["w"], v["h"], v["bd"], v["ct"], v["comp"], v["filt"], v["interlace"]) + data[33:]


def uniform_png(w, h, rgb=(200, 30, 60)):
    """A w x h RGB PNG of one colour, compressed row by row (a few hundred kB for 8192x4097)."""
    z = zlib.compressobj(9)
    first = b"\x00" + bytes(rgb) * w
    rest = b"\x02" + b"\x00" * (3 * w)  # Up filter: every later row is zeros
    parts = [z.compress(first)]
    for _ in range(h - 1):
        parts.append(z.compress(rest))
    parts.append(z.flush())
    return PNG_SIG + ihdr(w, h) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


# ---- JPEG (baseline, DC and one AC coefficient per block) ----------------------------------------

DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
DC_VALS = list(range(12))
AC_BITS = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # EOB: "0", run 0 size 1: "10"
AC_VALS = [0x00, 0x01]


def huff_codes(bits, vals):
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = (code, length)
            code, k = code + 1, k + 1
        code <<= 1
    return codes


class BitsMSB:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, n):
        for i in range(n - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc, self.n = 0, 0

    def flush(self):
        while self.n:
            self.put(1, 1)


def marker(code, payload):
    return bytes([0xFF, code]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(w, h, rgb, sampling=((1, 1), (1, 1), (1, 1)), restart=0, sof=0xC0):
    """rgb(x, y) -> (r, g, b); sampling: (H, V) per component, one entry for grayscale."""
    ycc = [
        lambda r, g, b: 0.299 * r + 0.587 * g + 0.114 * b,
        lambda r, g, b: 128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        lambda r, g, b: 128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
    ]
    hmax = max(s[0] for s in sampling)
    vmax = max(s[1] for s in sampling)
    mcux, mcuy = -(-w // (8 * hmax)), -(-h // (8 * vmax))
    dc, ac = huff_codes(DC_BITS, DC_VALS), huff_codes(AC_BITS, AC_VALS)
    bits = BitsMSB()
    pred = [0] * len(sampling)
    done = 0
    for my in range(mcuy):
        for mx in range(mcux):
            if restart and done and done % restart == 0:
                bits.flush()
                bits.out += bytes([0xFF, 0xD0 + (done // restart - 1) % 8])
                pred = [0] * len(sampling)
            for c, (hs, vs) in enumerate(sampling):
                for v in range(vs):
                    for u in range(hs):
                        # the block's centre, in image pixels
                        x = min(w - 1, ((mx * hs + u) * 8 + 4) * hmax // hs)
                        y = min(h - 1, ((my * vs + v) * 8 + 4) * vmax // vs)
                        val = ycc[c](*rgb(x, y))
                        coef = max(-1024, min(1016, int(round((val - 128) * 8))))
                        diff = coef - pred[c]
                        pred[c] = coef
                        size = abs(diff).bit_length()
                        bits.put(*dc[size])
                        if size:
                            bits.put(diff if diff > 0 else diff + (1 << size) - 1, size)
                        if (x ^ y) & 8:  # one AC coefficient of +-1 now and then
                            bits.put(*ac[0x01])
                            bits.put(1 if (x + y) & 16 else 0, 1)
                        bits.put(*ac[0x00])
            done += 1
    bits.flush()
    n = len(sampling)
    sof_payload = struct.pack(">BHHB", 8, h, w, n) + b"".join(
        bytes([c + 1, (hs << 4) | vs, 0]) for c, (hs, vs) in enumerate(sampling)
    )
    dht = bytes([0x00]) + bytes(DC_BITS) + bytes(DC_VALS) + bytes([0x10]) + bytes(AC_BITS) + bytes(AC_VALS)
    sos = bytes([n]) + b"".join(bytes([c + 1, 0x00]) for c in range(n)) + bytes([0, 63, 0])
    return (
        b"\xff\xd8"
        + marker(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + marker(0xDB, b"\x00" + b"\x01" * 64)
        + marker(sof, sof_payload)
        + marker(0xC4, dht)
        + (marker(0xDD, struct.pack(">H", restart)) if restart else b"")
        + marker(0xDA, sos)
        + bytes(bits.out)
        + b"\xff\xd9"
    )


def jpeg_segments(data):
    """[(offset, marker, length)] up to the first SOS."""
    out, at = [], 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        m = data[at + 1]
        n = struct.unpack(">H", data[at + 2:at + 4])[0]
        out.append((at, m, n))
        if m == 0xDA:
            break
        at += 2 + n
    return out


def with_sof(data, h=None, w=None, ncomp=None, precision=None, sampling=None, kind=None):
    data = bytearray(data)
    for at, m, n in jpeg_segments(bytes(data)):
        if m in (0xC0, 0xC1, 0xC2):
            p = at + 4
            if precision is not None:
                data[p] = precision
            if h is not None:
                data[p + 1:p + 3] = struct.pack(">H", h)
            if w is not None:
                data[p + 3:p + 5] = struct.pack(">H", w)
            if ncomp is not None:
                data[p + 5] = ncomp
            if sampling is not None:
                data[p + 7] = sampling
            if kind is not None:
                data[at + 1] = kind
    return bytes(data)


# ---- WebP (lossless, simple prefix codes) --------------------------------------------------------


class BitsLSB:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, n):
        self.acc |= (value & ((1 << n) - 1)) << self.n
        self.n += n
        while self.n >= 8:
            self.out.append(self.acc & 0xFF)
            self.acc >>= 8
            self.n -= 8

    def bytes(self):
        return bytes(self.out) + (bytes([self.acc]) if self.n else b"")


def riff(chunks):
    body = b"WEBP"
    for kind, data in chunks:
        body += kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def vp8l_data(w, h, pick, colours=((10, 200), (40, 220), (90, 160)), pixels=None):
    """pick(x, y) -> (g, r, b) bits choosing between the two values of each channel; only the
    first `pixels` pixels are written when given (a header that claims more than follows)."""
    b = BitsLSB()
    b.put(0x2F, 8)
    b.put(w - 1, 14)
    b.put(h - 1, 14)
    b.put(0, 1)  # alpha hint
    b.put(0, 3)  # version
    b.put(0, 1)  # no transform
    b.put(0, 1)  # no colour cache
    b.put(0, 1)  # no meta prefix codes
    for lo, hi in colours:  # green, red, blue: two symbols each, one bit a pixel
        b.put(1, 1)
        b.put(1, 1)
        b.put(1, 1)
        b.put(lo, 8)
        b.put(hi, 8)
    for sym, first8 in ((255, 1), (0, 0)):  # alpha 255, distance 0: one symbol, no bits
        b.put(1, 1)
        b.put(0, 1)
        b.put(first8, 1)
        b.put(sym, 8 if first8 else 1)
    for i in range(w * h if pixels is None else min(pixels, w * h)):
        g, r, bl = pick(i % w, i // w)
        b.put(g, 1)
        b.put(r, 1)
        b.put(bl, 1)
    return b.bytes()


def webp(w, h, pick):
    return riff([(b"VP8L", vp8l_data(w, h, pick))])


def vp8x(cw, ch, inner, flags=0, more=()):
    head = bytes([flags, 0, 0, 0]) + (cw - 1).to_bytes(3, "little") + (ch - 1).to_bytes(3, "little")
    return riff([(b"VP8X", head)] + list(more) + [inner])


def vp8_lossy_header(w, h, tail=b""):
    """A VP8 key frame's header with the given size, then garbage: the decoder reads the size."""
    first_part = 10 + len(tail)
    tag = (0 | (0 << 1) | (1 << 4) | (first_part << 5)).to_bytes(3, "little")
    return riff([(b"VP8 ", tag + b"\x9d\x01\x2a" + struct.pack("<HH", w & 0x3FFF, h & 0x3FFF) + tail)])


# ---- mutations -----------------------------------------------------------------------------------


def truncations(rng, data, n):
    lens = {0, 1, 2, 4, 7, 8, 12, 16, 20, 33, len(data) // 2, len(data) - 1, len(data) - 4, len(data) - 12}
    while len(lens) < n + 4:
        lens.add(rng.randrange(1, len(data)))
    return [(f"trunc{k}", data[:k]) for k in sorted(x for x in lens if 0 <= x < len(data))][:n]


def flips(rng, data, n, start=0):
    out = []
    for i in range(n):
        d = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3, 5, 9))):
            at = rng.randrange(start, len(d))
            how = rng.randrange(4)
            d[at] = [d[at] ^ (1 << rng.randrange(8)), rng.randrange(256), 0xFF, 0x00][how]
        out.append((f"flip{i}", bytes(d)))
    return out


def png_variants(rng, name, data, n_trunc=10, n_flip=10, n_crc=10):
    out = [(f"{name}:ok", data)]
    out += [(f"{name}:{l}", d) for l, d in truncations(rng, data, n_trunc)]
    out += [(f"{name}:{l}", d) for l, d in flips(rng, data, n_flip, 8)]
    # flips after the signature with every CRC fixed, so the decoder reads what was flipped
    out += [(f"{name}:crc{l}", fix_crcs(d)) for l, d in flips(rng, data, n_crc, 8)]
    return out


def generic_variants(rng, name, data, n_trunc=10, n_flip=12):
    out = [(f"{name}:ok", data)]
    out += [(f"{name}:{l}", d) for l, d in truncations(rng, data, n_trunc)]
    out += [(f"{name}:{l}", d) for l, d in flips(rng, data, n_flip)]
    return out


# ---- the inputs ----------------------------------------------------------------------------------


def rgb_pattern(x, y):
    return ((x * 37 + y * 11) & 255, (x * 5 + y * 71) & 255, ((x ^ y) * 23) & 255)


def images(seeds):
    rng = random.Random(SEED)
    out = []
    # PNGs the extension made (catalog photos, generated images, strips)
    for name, data in seeds:
        out += png_variants(rng, f"seed-{name}", data, 8, 8, 8)
    # PNGs of every colour type and depth, filtered and interlaced
    small = png(13, 9, rgb_pattern, filters=(0, 1, 2, 3, 4))
    pngs = {
        "png-rgb": small,
        "png-gray1": png(17, 5, lambda x, y: ((x + y) & 1,), ct=0, bd=1),
        "png-gray16": png(6, 6, lambda x, y: ((x * 9000 + y * 700) & 0xFFFF,), ct=0, bd=16, filters=(4,)),
        "png-pal4": png(11, 7, lambda x, y: ((x + 2 * y) % 5,), ct=3, bd=4, plte=bytes(range(15)), trns=b"\x00\x80"),
        "png-graya": png(8, 8, lambda x, y: (x * 30, y * 30), ct=4),
        "png-rgba16": png(5, 7, lambda x, y: (x * 9000, y * 9000, 40000, 30000), ct=6, bd=16, filters=(1, 3)),
        "png-adam7": png(19, 13, rgb_pattern, interlace=1, filters=(0, 2, 4)),
    }
    for name, data in pngs.items():
        out += png_variants(rng, name, data, 6, 6, 8)
    base = pngs["png-rgb"]
    # headers that claim extreme sizes (CRC fixed), over the small image's data
    for w, h in [(0, 0), (0, 9), (13, 0), (1, 100000), (100000, 1), (8192, 8192), (8193, 1), (1, 8193),
                 (8192, 4883), (8192, 4882), (65535, 65535), (2**31 - 1, 2**31 - 1), (2**31 - 1, 1),
                 (1, 2**31 - 1), (2**31, 2**31), (2**32 - 1, 2**32 - 1), (14, 9), (12, 9), (13, 10)]:
        out.append((f"png-ihdr:{w}x{h}", with_ihdr(base, w=w, h=h)))
    for field, values in [("bd", (0, 3, 7, 32, 255)), ("ct", (1, 5, 7, 255)), ("comp", (1, 255)),
                          ("filt", (1, 255)), ("interlace", (2, 255))]:
        for v in values:
            out.append((f"png-ihdr:{field}={v}", with_ihdr(base, **{field: v})))
    out.append(("png-ihdr:pal-no-plte", with_ihdr(base, ct=3)))
    out.append(("png-ihdr:16bit-pal", with_ihdr(pngs["png-pal4"], bd=16)))
    sig_ihdr, idat_iend = base[:33], base[33:]
    z16 = zlib.compress(b"\x00" * (1 << 20), 9)
    chunks = [
        ("no-idat", sig_ihdr + chunk(b"IEND", b"")),
        ("no-iend", base[:-12]),
        ("only-sig", PNG_SIG),
        ("ihdr-len-huge", base[:8] + b"\xff\xff\xff\xff" + base[12:]),
        ("chunk-len-2g", sig_ihdr + b"\x7f\xff\xff\xfftEXt" + b"a" * 64),
        ("idat-len-2g", sig_ihdr + b"\x7f\xff\xff\xffIDAT" + idat_iend[8:]),
        ("idat-split-1", sig_ihdr + b"".join(chunk(b"IDAT", bytes([c])) for c in zlib.compress(
            b"".join(b"\x00" + bytes(rgb_pattern(x, y)[k] for x in range(13) for k in range(3)) for y in range(9))))
         + chunk(b"IEND", b"")),
        ("idat-bomb", sig_ihdr + chunk(b"IDAT", zlib.compress(b"\x00" * (16 << 20), 9)) + chunk(b"IEND", b"")),
        ("idat-not-zlib", sig_ihdr + chunk(b"IDAT", bytes(rng.randrange(256) for _ in range(200))) + chunk(b"IEND", b"")),
        ("idat-short", sig_ihdr + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")),
        ("idat-bad-filter", sig_ihdr + chunk(b"IDAT", zlib.compress(b"\x09" * (9 * 40))) + chunk(b"IEND", b"")),
        ("ztxt-bomb", sig_ihdr + chunk(b"zTXt", b"k\x00\x00" + zlib.compress(b"a" * (8 << 20), 9)) + idat_iend),
        ("iccp-bomb", sig_ihdr + chunk(b"iCCP", b"p\x00\x00" + zlib.compress(b"\x00" * (8 << 20), 9)) + idat_iend),
        ("itxt-bad", sig_ihdr + chunk(b"iTXt", b"k\x00\x01\x00\x00\x00" + z16[:50]) + idat_iend),
        ("plte-long", sig_ihdr + chunk(b"PLTE", bytes(3 * 300)) + idat_iend),
        ("plte-odd", sig_ihdr + chunk(b"PLTE", bytes(7)) + idat_iend),
        ("trns-long", pngs["png-pal4"][:33] + chunk(b"PLTE", bytes(15)) + chunk(b"tRNS", bytes(300))
         + pngs["png-pal4"][33 + 12 + 15 + 12 + 2:]),
        ("actl-huge", sig_ihdr + chunk(b"acTL", struct.pack(">II", 2**31 - 1, 0))
         + chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, 2**31 - 1, 2**31 - 1, 0, 0, 1, 1, 0, 0)) + idat_iend),
        ("fctl-offset", sig_ihdr + chunk(b"acTL", struct.pack(">II", 1, 0))
         + chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, 13, 9, 2**31 - 1, 2**31 - 1, 1, 1, 0, 0)) + idat_iend),
        ("sbit-bad", sig_ihdr + chunk(b"sBIT", b"\x00\xff\x09") + idat_iend),
        ("phys-huge", sig_ihdr + chunk(b"pHYs", struct.pack(">IIB", 2**32 - 1, 0, 1)) + idat_iend),
        ("exif-bad", sig_ihdr + chunk(b"eXIf", b"MM\x00\x2a\xff\xff\xff\xff" + bytes(20)) + idat_iend),
        ("many-chunks", sig_ihdr + chunk(b"tEXt", b"k\x00v") * 2000 + idat_iend),
        ("trailing-junk", base + bytes(rng.randrange(256) for _ in range(4096))),
    ]
    out += [(f"png-chunk:{l}", d) for l, d in chunks]
    # JPEG
    jpegs = {
        "jpeg444": jpeg(21, 14, rgb_pattern),
        "jpeg420": jpeg(35, 19, rgb_pattern, sampling=((2, 2), (1, 1), (1, 1)), restart=2),
        "jpeg-gray": jpeg(16, 24, rgb_pattern, sampling=((1, 1),)),
        "jpeg422": jpeg(9, 30, rgb_pattern, sampling=((2, 1), (1, 1), (1, 1))),
    }
    for name, data in jpegs.items():
        out += generic_variants(rng, name, data, 8, 12)
    j = jpegs["jpeg444"]
    for h, w in [(0, 0), (0, 21), (14, 0), (65535, 65535), (1, 65535), (65535, 1), (8192, 8192), (8192, 4883),
                 (15, 21), (14, 22), (8193, 1)]:
        out.append((f"jpeg-sof:{w}x{h}", with_sof(j, h=h, w=w)))
    for label, kw in [("ncomp0", dict(ncomp=0)), ("ncomp4", dict(ncomp=4)), ("ncomp255", dict(ncomp=255)),
                      ("prec12", dict(precision=12)), ("prec16", dict(precision=16)), ("prec0", dict(precision=0)),
                      ("samp0", dict(sampling=0x00)), ("samp-ff", dict(sampling=0xFF)), ("samp-41", dict(sampling=0x41)),
                      ("progressive", dict(kind=0xC2)), ("arith", dict(kind=0xC9)), ("lossless", dict(kind=0xC3)),
                      ("extended", dict(kind=0xC1))]:
        out.append((f"jpeg-sof:{label}", with_sof(j, **kw)))
    segs = {m: (at, n) for at, m, n in jpeg_segments(j)}
    dqt_at, dqt_n = segs[0xDB]
    dht_at, dht_n = segs[0xC4]
    sos_at, _ = segs[0xDA]
    jx = [
        ("soi-only", b"\xff\xd8"),
        ("soi-eoi", b"\xff\xd8\xff\xd9"),
        ("no-dqt", j[:dqt_at] + j[dqt_at + 2 + dqt_n:]),
        ("no-dht", j[:dht_at] + j[dht_at + 2 + dht_n:]),
        ("no-sos", j[:sos_at] + b"\xff\xd9"),
        ("seg-len0", j[:dqt_at + 2] + b"\x00\x00" + j[dqt_at + 4:]),
        ("seg-len1", j[:dqt_at + 2] + b"\x00\x01" + j[dqt_at + 4:]),
        ("seg-len-huge", j[:dqt_at + 2] + b"\xff\xff" + j[dqt_at + 4:]),
        ("dqt-id3", j[:dqt_at + 4] + b"\x03" + j[dqt_at + 5:]),
        ("dqt-16bit", j[:dqt_at + 4] + b"\x10" + j[dqt_at + 5:]),
        ("dqt-zero", j[:dqt_at + 5] + b"\x00" * 64 + j[dqt_at + 69:]),
        ("dht-overfull", j[:dht_at + 5] + b"\xff" * 16 + j[dht_at + 21:]),
        ("dht-class7", j[:dht_at + 4] + b"\x70" + j[dht_at + 5:]),
        ("sos-table9", j[:sos_at + 6] + b"\x99" + j[sos_at + 7:]),
        ("sos-ncomp0", j[:sos_at + 4] + b"\x00" + j[sos_at + 5:]),
        ("sos-ss-se", j[:sos_at + 11] + b"\x3f\x00" + j[sos_at + 13:]),
        ("dri0", j[:sos_at] + marker(0xDD, b"\x00\x00") + j[sos_at:]),
        ("dri1-no-rst", j[:sos_at] + marker(0xDD, b"\x00\x01") + j[sos_at:]),
        ("fill-ff", j[:sos_at] + b"\xff" * 5000 + j[sos_at:]),
        ("many-app", j[:2] + marker(0xE1, b"x" * 100) * 3000 + j[2:]),
        ("exif-bad", j[:2] + marker(0xE1, b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xff" + bytes(40)) + j[2:]),
        ("exif-ifd-loop", j[:2] + marker(0xE1, b"Exif\x00\x00II\x2a\x00\x08\x00\x00\x00\xff\xff" + bytes(12) * 3 + b"\x08\x00\x00\x00") + j[2:]),
        ("icc-chunks", j[:2] + marker(0xE2, b"ICC_PROFILE\x00\x05\x03" + bytes(50)) + marker(0xE2, b"ICC_PROFILE\x00\x00\x00") + j[2:]),
        ("adobe-bad", j[:2] + marker(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x07") + j[2:]),
        ("two-sof", j[:sos_at] + marker(0xC0, struct.pack(">BHHB", 8, 60000, 60000, 1) + b"\x01\x11\x00") + j[sos_at:]),
        ("no-eoi", j[:-2]),
        ("data-ff-ff", j[:-2] + b"\xff" * 64 + b"\xff\xd9"),
        ("rst-stray", j[:-2] + b"\xff\xd3\xff\xd5" + b"\xff\xd9"),
    ]
    out += [(f"jpeg-seg:{l}", d) for l, d in jx]
    # WebP
    pick = lambda x, y: ((x >> 1) & 1, (y >> 1) & 1, (x ^ y) & 1)  # noqa: E731
    webps = {
        "webp": webp(12, 10, pick),
        "webp-1x1": webp(1, 1, pick),
        "webp-vp8x": vp8x(12, 10, (b"VP8L", vp8l_data(12, 10, pick))),
    }
    for name, data in webps.items():
        out += generic_variants(rng, name, data, 8, 12)
    wx = [
        ("vp8l-16384x16384", riff([(b"VP8L", vp8l_data(16384, 16384, pick, pixels=400)[:40])])),
        ("vp8l-8192x8192", riff([(b"VP8L", vp8l_data(8192, 8192, pick, pixels=400)[:40])])),
        ("vp8l-8192x4883", riff([(b"VP8L", vp8l_data(8192, 4883, pick, pixels=400)[:40])])),
        ("vp8l-1x16384", riff([(b"VP8L", vp8l_data(1, 16384, pick, pixels=4000)[:400])])),
        ("vp8l-4096x4096-short", riff([(b"VP8L", vp8l_data(4096, 4096, pick, pixels=4000)[:400])])),
        ("vp8l-version7", riff([(b"VP8L", bytes([0x2F]) + (11 | (9 << 14) | (7 << 29)).to_bytes(4, "little") + bytes(20))])),
        ("vp8l-bad-sig", riff([(b"VP8L", b"\x2e" + vp8l_data(12, 10, pick)[1:])])),
        ("vp8l-transforms", riff([(b"VP8L", vp8l_data(12, 10, pick, pixels=0)[:5] + bytes([0xFF] * 64))])),
        ("vp8l-random", riff([(b"VP8L", vp8l_data(12, 10, pick, pixels=0)[:5] + bytes(rng.randrange(256) for _ in range(300)))])),
        ("vp8x-canvas-16777216x16777216", vp8x(1 << 24, 1 << 24, (b"VP8L", vp8l_data(12, 10, pick)))),
        ("vp8x-canvas-8192x8192", vp8x(8192, 8192, (b"VP8L", vp8l_data(12, 10, pick)))),
        ("vp8x-canvas-small", vp8x(1, 1, (b"VP8L", vp8l_data(12, 10, pick)))),
        ("vp8x-alpha-flag", vp8x(12, 10, (b"VP8L", vp8l_data(12, 10, pick)), flags=0x10,
                                 more=[(b"ALPH", b"\x01" + bytes(rng.randrange(256) for _ in range(40)))])),
        ("vp8x-icc-exif", vp8x(12, 10, (b"VP8L", vp8l_data(12, 10, pick)), flags=0x28,
                               more=[(b"ICCP", bytes(30)), (b"EXIF", b"MM\x00\x2a\xff\xff\xff\xff")])),
        ("vp8x-anim", vp8x(12, 10, (b"ANMF", struct.pack("<3s3s3s3s3sB", b"\xff\xff\xff", b"\xff\xff\xff",
                                                             (16383).to_bytes(3, "little"), (16383).to_bytes(3, "little"),
                                                             b"\x00\x00\x00", 0) + b"VP8L" + struct.pack("<I", 40)
                                      + vp8l_data(12, 10, pick, pixels=400)[:40]), flags=0x02,
                           more=[(b"ANIM", struct.pack("<IH", 0xFFFFFFFF, 0xFFFF))])),
        ("vp8x-no-image", riff([(b"VP8X", bytes(10))])),
        ("vp8-16383x16383", vp8_lossy_header(16383, 16383, bytes(64))),
        ("vp8-8192x8192", vp8_lossy_header(8192, 8192, bytes(64))),
        ("vp8-0x0", vp8_lossy_header(0, 0, bytes(64))),
        ("vp8-16x16-garbage", vp8_lossy_header(16, 16, bytes(rng.randrange(256) for _ in range(200)))),
        ("vp8-16x16-zeros", vp8_lossy_header(16, 16, bytes(200))),
        ("vp8-16x16-ones", vp8_lossy_header(16, 16, b"\xff" * 200)),
        ("vp8-scale-bits", riff([(b"VP8 ", b"\x50\x01\x00\x9d\x01\x2a\xff\xff\xff\xff" + bytes(40))])),
        ("vp8-interframe", riff([(b"VP8 ", b"\x51\x01\x00\x9d\x01\x2a\x10\x00\x10\x00" + bytes(40))])),
        ("riff-size-0", b"RIFF\x00\x00\x00\x00" + webps["webp"][8:]),
        ("riff-size-huge", b"RIFF\xff\xff\xff\xff" + webps["webp"][8:]),
        ("riff-odd", b"RIFF\x05\x00\x00\x00WEBP"),
        ("chunk-size-huge", webps["webp"][:16] + b"\xff\xff\xff\xff" + webps["webp"][20:]),
        ("chunk-size-0", webps["webp"][:16] + b"\x00\x00\x00\x00" + webps["webp"][20:]),
        ("unknown-chunk", riff([(b"XYZW", bytes(16))])),
        ("only-header", b"RIFF\x04\x00\x00\x00WEBP"),
    ]
    out += [(f"webp-x:{l}", d) for l, d in wx]
    # wrong magic and non-images
    magic = [
        ("empty", b""),
        ("one-byte", b"\x89"),
        ("png-sig-bad", b"\x89PNX" + base[4:]),
        ("png-as-jpeg", b"\xff\xd8\xff\xe0" + base[4:]),
        ("jpeg-as-png", PNG_SIG + j[8:]),
        ("webp-as-png", PNG_SIG + webps["webp"][8:]),
        ("riff-wave", b"RIFF" + webps["webp"][4:8] + b"WAVE" + webps["webp"][12:]),
        ("gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
        ("bmp", b"BM" + bytes(60)),
        ("tiff", b"II*\x00" + bytes(60)),
        ("zeros", bytes(1000)),
        ("ones", b"\xff" * 1000),
        ("random", bytes(rng.randrange(256) for _ in range(5000))),
        ("text", b"not an image at all, just words\n" * 10),
        ("ff-d8-only", b"\xff\xd8"),
        ("ff-d8-ff", b"\xff\xd8\xff"),
    ]
    out += [(f"magic:{l}", d) for l, d in magic]
    return out


def strip_images():
    return [("big-8192x4097", uniform_png(8192, 4097)), ("tall-1x8192", uniform_png(1, 8192, (10, 10, 10))),
            ("wide-8192x1", uniform_png(8192, 1, (0, 90, 0))), ("dot-1x1", uniform_png(1, 1, (0, 0, 250)))]


# ---- model checkpoints ---------------------------------------------------------------------------


_FNV = {}


def fnv1a64(data):
    if data in _FNV:
        return _FNV[data]
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    _FNV[data] = h
    return h


def ckpt_parse(data):
    import json

    hlen = struct.unpack("<Q", data[12:20])[0]
    header = json.loads(data[20:20 + hlen])
    bodies, at = [], 20 + hlen
    for s in header["sections"]:
        bodies.append(data[at:at + s["len"]])
        at += s["len"]
    return header, bodies


def ckpt_build(header, bodies, fix=True, raw_header=None):
    import json

    if fix:
        for s, b in zip(header["sections"], bodies):
            s["len"] = len(b)
            s["fnv1a64"] = f"{fnv1a64(b):016x}"
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    return b"SYNTHCKP" + struct.pack("<IQ", 1, len(h)) + h + b"".join(bodies)


def ckpts(data):
    """Variants of an exported model: cut, flipped, its JSON header's numbers made extreme, its
    tensor archives corrupted with their checksums fixed (so that libtorch reads them)."""
    import copy
    import json
    import re

    rng = random.Random(SEED + 3)
    header, bodies = ckpt_parse(data)
    out = [("ckpt:ok", data)]
    out += [(f"ckpt:{l}", d) for l, d in truncations(rng, data, 10)]
    out += [(f"ckpt:{l}", d) for l, d in flips(rng, data, 8)]
    hjson = json.dumps(header, separators=(",", ":"))
    numbers = [m for m in re.finditer(r"(?<=:)-?[0-9][0-9.eE+-]*", hjson)]
    extremes = ["0", "-1", "1", "7", "4096", "65536", "2147483648", "18446744073709551615", "1e308", "-1e308",
                "99999999999999999999999", "0.5", "null", '"x"', "[]"]
    for i in range(30):
        m = rng.choice(numbers)
        v = rng.choice(extremes)
        h = (hjson[:m.start()] + v + hjson[m.end():]).encode()
        out.append((f"ckpt:header-num{i}", ckpt_build(header, bodies, fix=False, raw_header=h)))
    for label, h in [("hlen-max", None), ("hlen-0", b""), ("header-not-json", b"{" * 10)]:
        if h is None:
            out.append((f"ckpt:{label}", data[:12] + b"\xff" * 8 + data[20:]))
        else:
            out.append((f"ckpt:{label}", ckpt_build(header, bodies, fix=False, raw_header=h)))
    for label, edit in [
        ("section-len-max", lambda hd: hd["sections"][0].update(len=2**64 - 1)),
        ("section-len-0", lambda hd: hd["sections"][0].update(len=0)),
        ("section-missing", lambda hd: hd["sections"].pop()),
        ("sections-none", lambda hd: hd.update(sections=[])),
        ("format-version-0", lambda hd: hd.update(format=0)),
        ("steps-max", lambda hd: hd["generator"].update(steps=2**64 - 1)),
        # within every range, but its text table would take 256 GiB (fuzz.sh drops it where that
        # could be allocated)
        ("header-text-256GiB", lambda hd: hd["encoder"]["config"]["text"].update(buckets=2**24, dim=4096)),
    ]:
        hd = copy.deepcopy(header)
        edit(hd)
        out.append((f"ckpt:{label}", ckpt_build(hd, bodies, fix=False)))
    # tensor archives corrupted, checksums fixed
    for k, body in enumerate(bodies):
        for i in range(8):
            b = bytearray(body)
            for _ in range(rng.choice((1, 2, 4))):
                region = rng.random()
                at = (rng.randrange(min(len(b), 512)) if region < 0.4
                      else len(b) - 1 - rng.randrange(min(len(b), 512)) if region < 0.8
                      else rng.randrange(len(b)))
                b[at] = rng.randrange(256)
            bs = list(bodies)
            bs[k] = bytes(b)
            out.append((f"ckpt:section{k}-flip{i}", ckpt_build(copy.deepcopy(header), bs)))
        for i, cut in enumerate((len(body) // 2, len(body) - 22, 30)):
            bs = list(bodies)
            bs[k] = body[:cut]
            out.append((f"ckpt:section{k}-cut{i}", ckpt_build(copy.deepcopy(header), bs)))
    if len(bodies) >= 2:  # the sections swapped: every tensor has another name and shape
        out.append(("ckpt:sections-swapped", ckpt_build(copy.deepcopy(header), [bodies[1], bodies[0]] + bodies[2:])))
    return out


# ---- binary COPY files for the types' receive functions ------------------------------------------


def pgcopy(field):
    head = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    row = struct.pack(">h", 1) + (struct.pack(">i", -1) if field is None else struct.pack(">i", len(field)) + field)
    return head + row + struct.pack(">h", -1)


def emb(dims, values, unused=0):
    return struct.pack(">HH", dims, unused) + b"".join(struct.pack(">f", v) for v in values)


def recv_cases():
    rng = random.Random(SEED + 1)
    nan, inf = float("nan"), float("inf")
    e = [
        ("ok3", "fuzz_recv_emb", emb(3, [1, 2, 3])),
        ("ok16000", "fuzz_recv_emb", emb(16000, [0.5] * 16000)),
        ("dims0", "fuzz_recv_emb", emb(0, [])),
        ("dims16001", "fuzz_recv_emb", emb(16001, [1.0] * 16001)),
        ("dims65535-short", "fuzz_recv_emb", emb(65535, [1.0] * 4)),
        ("dims3-short", "fuzz_recv_emb", emb(3, [1.0, 2.0])),
        ("dims2-extra", "fuzz_recv_emb", emb(2, [1.0, 2.0, 3.0])),
        ("len0", "fuzz_recv_emb", b""),
        ("len3", "fuzz_recv_emb", b"\x00\x03\x00"),
        ("nan", "fuzz_recv_emb", emb(3, [1, nan, 3])),
        ("inf", "fuzz_recv_emb", emb(2, [inf, 1])),
        ("-inf", "fuzz_recv_emb", emb(2, [1, -inf])),
        ("denormal", "fuzz_recv_emb", emb(2, [1e-45, -1e-45])),
        ("max-float", "fuzz_recv_emb", emb(2, [3.4028234e38, -3.4028234e38])),
        ("unused-ffff", "fuzz_recv_emb", emb(1, [1], 0xFFFF)),
        ("typmod-mismatch", "fuzz_recv_emb3", emb(2, [1, 2])),
        ("typmod-ok", "fuzz_recv_emb3", emb(3, [1, 2, 3])),
        ("null", "fuzz_recv_emb", None),
    ]
    for i in range(12):
        e.append((f"random{i}", "fuzz_recv_emb", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))))
    good = '{"model":1,"encoder":"e","generator":"g","text":"in black leather","reference":false,"embedding":[1,2,3]}'
    q = [
        ("ok", good),
        ("empty", ""),
        ("not-json", "synthquery:{"),
        ("empty-object", "{}"),
        ("array", "[1,2,3]"),
        ("embedding-empty", good.replace("[1,2,3]", "[]")),
        ("embedding-16001", good.replace("[1,2,3]", "[" + ",".join(["1"] * 16001) + "]")),
        ("embedding-70000", good.replace("[1,2,3]", "[" + ",".join(["1"] * 70000) + "]")),
        ("embedding-65537", good.replace("[1,2,3]", "[" + ",".join(["1"] * 65537) + "]")),
        ("embedding-null", good.replace("[1,2,3]", "[1,null,3]")),
        ("embedding-1e39", good.replace("[1,2,3]", "[1e39]")),
        ("embedding-1e400", good.replace("[1,2,3]", "[1e400]")),
        ("embedding-string", good.replace("[1,2,3]", '["NaN"]')),
        ("embedding-nested", good.replace("[1,2,3]", "[[1],[2]]")),
        ("text-1001", good.replace("in black leather", "x" * 1001)),
        ("text-70000", good.replace("in black leather", "y" * 70000)),
        ("text-empty", good.replace("in black leather", "")),
        ("text-nul", good.replace("in black leather", "a\\u0000b")),
        ("text-lone-surrogate", good.replace("in black leather", "\\ud800")),
        ("encoder-257", good.replace('"e"', '"' + "e" * 257 + '"')),
        ("encoder-70000", good.replace('"e"', '"' + "e" * 70000 + '"')),
        ("generator-65536", good.replace('"g"', '"' + "g" * 65536 + '"')),
        ("model-huge", good.replace('"model":1', '"model":18446744073709551616')),
        ("model-negative", good.replace('"model":1', '"model":-9223372036854775808')),
        ("model-float", good.replace('"model":1', '"model":1.5')),
        ("reference-number", good.replace('"reference":false', '"reference":2')),
        ("missing-field", good.replace('"generator":"g",', "")),
        ("extra-field", good[:-1] + ',"x":1}'),
        ("deep-nesting", "[" * 100000 + "]" * 100000),
        ("deep-object", '{"a":' * 5000 + "1" + "}" * 5000),
        ("trailing", good + " junk"),
        ("utf8-bad", None),
    ]
    files = [(f"emb:{l}", t, pgcopy(d)) for l, t, d in e]
    for l, text in q:
        data = b'{"text":"\xff\xfe"}' if text is None else text.encode()
        files.append((f"synthquery:{l}", "fuzz_recv_q", pgcopy(data)))
    return files, q


# ---- text inputs ---------------------------------------------------------------------------------


def text_cases():
    rng = random.Random(SEED + 2)
    out = []
    alphabet = "[]0123456789,.-+eE naifINFTY\t\n{}()'\"x\\"
    for i in range(250):
        n = rng.choice((1, 2, 3, 5, 8, 20, 60))
        out.append(("embedding-text", f"random{i}", "".join(rng.choice(alphabet) for _ in range(n))))
    # mutations of well-formed vectors
    for i in range(150):
        v = [rng.choice(("1", "-0", "0.5", "1e38", "3.4028235e38", "1e-45", "7", "-2.5e-3"))
             for _ in range(rng.randrange(1, 12))]
        s = list("[" + ",".join(v) + "]")
        for _ in range(rng.randrange(0, 3)):
            at = rng.randrange(len(s))
            op = rng.randrange(3)
            if op == 0:
                del s[at]
            elif op == 1:
                s.insert(at, rng.choice(alphabet))
            else:
                s[at] = rng.choice(alphabet)
        out.append(("embedding-text", f"mutated{i}", "".join(s)))
    for label, value in [
        ("big-exponent", "[1e999999999999]"), ("long-digits", "[" + "9" * 5000 + "]"),
        ("long-zeros", "[0." + "0" * 5000 + "1]"), ("hex", "[0x10]"), ("nan-word", "[nan]"),
        ("inf-word", "[inf]"), ("spaces", "  [ 1 , 2 ]  "), ("unicode-digit", "[\u0661]"),
        ("neg-zero", "[-0]"), ("plus", "[+1]"), ("dot", "[.]"), ("e", "[e]"), ("comma-only", "[,]"),
    ]:
        out.append(("embedding-text", label, value))
    good = '{"model":1,"encoder":"e","generator":"g","text":"in black leather","reference":false,"embedding":[1,2,3]}'
    _, q = recv_cases()
    for label, text in q:
        if text is not None:
            out.append(("synthquery-text", label, "synthquery:" + text))
    for i in range(60):
        s = list("synthquery:" + good)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(11, len(s))
            s[at] = rng.choice('{}[]",:0123456789.-eE truefalsn\\u')
        out.append(("synthquery-text", f"mutated{i}", "".join(s)))
    for label, value in [
        ("prefix-only", "synthquery:"), ("prefix-space", "   synthquery:" + good), ("prefix-case", "SynthQuery:" + good),
    ]:
        out.append(("synthquery-text", label, value))
    return out


def copy_escape(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def write_images(rows, path):
    with open(path, "w") as f:
        for label, data in rows:
            f.write(f"{copy_escape(label)}\t\\\\x{data.hex()}\n")


def main():
    cmd = sys.argv[1]
    if cmd == "images":
        seeds = []
        with open(sys.argv[2]) as f:
            for line in f:
                name, hexdata = line.rstrip("\n").split("\t")
                seeds.append((name, bytes.fromhex(hexdata)))
        write_images(images(seeds), sys.argv[3])
    elif cmd == "ckpt":
        with open(sys.argv[2]) as f:
            data = bytes.fromhex(f.read().strip())
        write_images(ckpts(data), sys.argv[3])
    elif cmd == "strip":
        write_images(strip_images(), sys.argv[2])
    elif cmd == "recv":
        directory, listing = sys.argv[2], sys.argv[3]
        files, _ = recv_cases()
        with open(listing, "w") as f:
            for i, (label, table, data) in enumerate(files):
                path = f"{directory}/recv{i:03d}.bin"
                with open(path, "wb") as g:
                    g.write(data)
                f.write(f"{copy_escape(label)}\t{table}\t{path}\n")
    elif cmd == "text":
        with open(sys.argv[2], "w") as f:
            for family, label, value in text_cases():
                f.write(f"{family}\t{copy_escape(label)}\t{copy_escape(value)}\n")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
