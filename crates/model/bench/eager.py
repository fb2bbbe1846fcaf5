#!/usr/bin/env python3
"""The work of `synth bench`, done the obvious way in PyTorch eager, for a side-by-side comparison.

Builds the same networks as crates/model/src/nets.rs with the default configs of config.rs
(CNN image encoder, hashed-subword text encoder, TIRG composition head, U-Net generator with
FiLM, projection critic), then times what `fn bench` in src/bin/synth.rs times:

  * a stage-1 step (train.rs `encoder_step`): encode source and target, text features, compose,
    in-batch contrastive loss, Adam over encoder + text + composer;
  * a stage-2 step (train.rs `gan_step`): one WGAN-GP critic step (gradient penalty through a
    double backward), then one generator step: adversarial + triplet + pixel L1 + contrastive
    + perceptual feature loss (TrainConfig's default weight 2; --feature-weight 0 leaves it out),
    with the encoder frozen;
  * generate + embed (model.rs `generate_tensor`): text features, condition (with the composed
    embedding), generator, image encoder, under no_grad, at batch 1 and 64.

Only torch is needed. Images are random values in [-1, 1] (the content does not change the
work); captions are a fixed sample of the synthetic catalog's, hashed into subword ids with
text.rs's scheme once at start-up (the Rust side hashes them every step; in Rust that costs
microseconds, in Python it would cost more than the step itself, which is not what is compared).

  python3 crates/model/bench/eager.py --device cpu --threads 2 --size 32 --iters 20 --batch 64
"""

import argparse
import random
import statistics
import sys
import time
import warnings

# torch warns at import when NumPy is missing; nothing here needs NumPy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

# ---- defaults of crates/model/src/config.rs ------------------------------------------------

ENC_WIDTH = 16  # EncoderKind::Cnn { width: 16 }
EMBED_DIM = 64
COMPOSE_HIDDEN = 128
TEXT_BUCKETS = 1 << 15
TEXT_DIM = 64
MIN_N, MAX_N = 3, 5
WORD_BIGRAMS = True
MAX_IDS = 512
NOISE_DIM = 16
GEN_WIDTH = 12
COND_DIM = 128
CRITIC_WIDTH = 8
COMPOSE_CONDITION = True

LR_ENCODER = 2e-3
LR_GENERATOR = 5e-4
LR_CRITIC = 1e-3
GP_WEIGHT = 10.0
ADV_WEIGHT = 0.05
TRIPLET_WEIGHT = 1.0
TRIPLET_MARGIN = 0.5
L1_WEIGHT = 5.0
CONTRASTIVE_WEIGHT = 1.0
TEXT_ONLY_PROB = 0.1
PIXEL_DROP_PROB = 0.2
TEMPERATURE = 0.1

# Parameter counts at the defaults and image size 32, worked out by hand from nets.rs
# (3 down levels: 32 -> 16 -> 8 -> 4; conv = cin*cout*k*k + cout; linear = in*out + out):
#   enc:      d1 3->16 (784) n1 (32) d2 16->32 (8224) n2 (64) d3 32->64 (32832) n3 (128)
#             fc 1024->64 (65600)                                                 = 107,664
#   text:     buckets 32769x64 (2,097,216) + fc 64->64 (4,160)                  = 2,101,376
#   compose:  fc1 129->128 (16,640) + gate 128->64 (8,256) + res 128->64 (8,256)   = 33,152
#   gen:      channels per level 48, 48, 24, 12; condition 64+1+64+64 = 193
#             fc 209->768 (161,280) cond 193->128 (24,832)
#             src1 3->24 (1,176) src2 24->48 (18,480) src3 48->48 (36,912)
#             up1 96->48 3x3 (41,520) film1 128->96 (12,384)
#             up2 96->24 (20,760) film2 128->48 (6,192)
#             up3 48->12 (5,196) film3 128->24 (3,096)   norms have no affine parameters
#             out 15->3 3x3 (408)                                                 = 332,236
#   critic:   d1 3->8 (392) d2 8->16 (2,064) d3 16->32 (8,224) fc 512->128 (65,664)
#             lin 128->1 (129) proj 193->128 (24,832)                             = 101,305
EXPECTED_PARAMS_32 = {
    "enc": 107_664,
    "text": 2_101_376,
    "compose": 33_152,
    "gen": 332_236,
    "critic": 101_305,
}

# A sample of the synthetic catalog's relative captions (synthsearch-data), two per pair.
CAPTIONS = [
    ("is green instead of pink", "is darker"),
    ("in denim", "is made of denim"),
    ("has no pattern and has no sleeves", "has no sleeves and has no pattern"),
    ("has a graphic logo and is floor length", "is longer, maxi length and has a logo"),
    ("in plain fabric and is orange instead of pink", "is orange and in plain fabric"),
    ("is lighter and yellow", "in yellow"),
    ("is navy colored and zebra striped", "is navy colored and has zebra print"),
    ("in purple", "is purple colored"),
    ("in knit fabric and is zebra striped", "has a zebra pattern and is a knit"),
    ("in black", "is black instead of navy"),
    ("is v-neck and in plain fabric", "has a v neckline and is not knit"),
    ("is not leather", "in plain fabric"),
    ("is knee length", "is shorter, knee length"),
    ("is sleeveless and beige colored", "is beige and has no sleeves"),
    ("has no sleeves", "is sleeveless"),
    ("is dotted", "has dots"),
    ("is knitted", "in knit fabric"),
    ("is beige instead of grey", "is lighter and beige"),
    ("has a zebra pattern", "is zebra striped"),
    ("is beige colored", "in beige"),
    ("is grey colored", "is darker"),
    ("in plain fabric and is grey colored", "is grey colored and not knit"),
    ("in pink leather", "is leather and more colorful"),
    ("has a graphic logo", "has a logo"),
    ("in navy", "is more colorful"),
    ("in denim", "is denim"),
    ("is blue colored", "is blue instead of red"),
    ("is darker and brown and in denim", "is made of denim and has a brown color"),
    ("has long sleeves", "is long sleeved"),
    ("has a crew neckline and has polka dots", "has a crew neck and is dotted"),
    ("is a long tunic", "is longer, tunic length"),
    ("is long sleeved and blue", "is long sleeved and in blue"),
]

# ---- text.rs: words and hashed subword ids -------------------------------------------------


def words(text):
    """Lowercased runs of letters and digits."""
    out, cur = [], []
    for ch in text:
        if ch.isalnum():
            cur.append(ch)
        elif cur:
            out.append("".join(cur).lower())
            cur = []
    if cur:
        out.append("".join(cur).lower())
    return out


def fnv1a32(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def subword_ids(ws):
    """Ids in 1..=buckets of every word `<w>`, its character n-grams of MIN_N..=MAX_N and the
    word bigrams, cut at MAX_IDS."""

    def bucket(s):
        return fnv1a32(s.encode()) % TEXT_BUCKETS + 1

    out = []
    for i, w in enumerate(ws):
        marked = "<" + w + ">"
        out.append(bucket(marked))
        for n in range(MIN_N, MAX_N + 1):
            if n >= len(marked):
                break
            for start in range(len(marked) - n + 1):
                out.append(bucket(marked[start:start + n]))
        if WORD_BIGRAMS and i + 1 < len(ws):
            out.append(bucket(w + " " + ws[i + 1]))
    return out[:MAX_IDS]


def pad(rows, device):
    width = max(1, max(len(r) for r in rows))
    return torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.int64).to(device)


# ---- nets.rs ---------------------------------------------------------------------------------


def l2_normalize(x):
    return x / x.square().sum(-1, keepdim=True).sqrt().clamp_min(1e-8)


def groups(channels):
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


def down_levels(image_size):
    # Down to 4x4.
    return ((image_size // 4) & -(image_size // 4)).bit_length() - 1


class CnnEncoder(nn.Module):
    def __init__(self, width, image_size, embed_dim):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c = 3
        for i in range(down_levels(image_size)):
            out = width << min(i, 3)
            self.convs.append(nn.Conv2d(c, out, 4, stride=2, padding=1))
            self.norms.append(nn.GroupNorm(groups(out), out))
            c = out
        self.fc = nn.Linear(c * 16, embed_dim)

    def forward_features(self, x):
        maps = []
        for conv, norm in zip(self.convs, self.norms):
            x = F.leaky_relu(norm(conv(x)), 0.2)
            maps.append(x)
        return maps, l2_normalize(self.fc(x.flatten(1)))

    def forward(self, x):
        return self.forward_features(x)[1]


class TextEncoder(nn.Module):
    def __init__(self, buckets, dim):
        super().__init__()
        self.buckets = nn.Parameter(torch.randn(buckets + 1, dim) * 0.1)
        self.fc = nn.Linear(dim, dim)

    def forward(self, ids):
        e = F.embedding(ids, self.buckets, padding_idx=0)
        mask = (ids > 0).float().unsqueeze(-1)
        h = (e * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.fc(h)


def condition(e_src, has, text):
    return torch.cat([e_src * has, has, text], 1)


class Composer(nn.Module):
    """TIRG-style gated residual: normalize(gate * e_src + residual)."""

    def __init__(self, embed_dim, text_dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim + 1 + text_dim, hidden)
        self.gate = nn.Linear(hidden, embed_dim)
        self.res = nn.Linear(hidden, embed_dim)

    def forward(self, e_src, has, text):
        h = F.relu(self.fc1(condition(e_src, has, text)))
        gate = torch.sigmoid(self.gate(h))
        return l2_normalize(gate * (e_src * has) + self.res(h))


def condition_dim():
    base = EMBED_DIM + 1 + TEXT_DIM
    return base + EMBED_DIM if COMPOSE_CONDITION else base


class Generator(nn.Module):
    """U-Net: source convs down to 4x4, a 4x4 seed from noise + condition, up blocks with skips
    (nearest upsample, 3x3 conv, GroupNorm without affine, FiLM from the condition)."""

    def __init__(self, image_size):
        super().__init__()
        levels = down_levels(image_size)

        def chan(level):
            return GEN_WIDTH * (1 << min(levels - level, 2))

        cond_in = condition_dim()
        self.c0 = chan(0)
        self.fc = nn.Linear(NOISE_DIM + cond_in, self.c0 * 16)
        self.cond = nn.Linear(cond_in, COND_DIM)
        self.src = nn.ModuleList()
        for k in range(1, levels + 1):
            cin = 3 if k == 1 else chan(levels - k + 1)
            self.src.append(nn.Conv2d(cin, chan(levels - k), 4, stride=2, padding=1))
        self.ups = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.films = nn.ModuleList()
        for level in range(1, levels + 1):
            cin, cout = 2 * chan(level - 1), chan(level)
            self.ups.append(nn.Conv2d(cin, cout, 3, padding=1))
            self.norms.append(nn.GroupNorm(groups(cout), cout, affine=False))
            film = nn.Linear(COND_DIM, 2 * cout)
            nn.init.zeros_(film.weight)
            self.films.append(film)
        self.out = nn.Conv2d(chan(levels) + 3, 3, 3, padding=1)

    def forward(self, z, cond, src):
        c = F.relu(self.cond(cond))
        skips = []
        h = src
        for conv in self.src:
            h = F.leaky_relu(conv(h), 0.2)
            skips.append(h)
        x = F.relu(self.fc(torch.cat([z, cond], 1))).view(-1, self.c0, 4, 4)
        for conv, norm, film in zip(self.ups, self.norms, self.films):
            x = torch.cat([x, skips.pop()], 1)
            x = norm(conv(F.interpolate(x, scale_factor=2, mode="nearest")))
            gamma, beta = film(c)[:, :, None, None].chunk(2, 1)
            x = F.relu(x * (gamma + 1.0) + beta)
        return torch.tanh(self.out(torch.cat([x, src], 1)))


class Critic(nn.Module):
    """Projection critic: lin(h) + <h, proj(cond)>, no normalization layers."""

    def __init__(self, image_size):
        super().__init__()
        self.downs = nn.ModuleList()
        c = 3
        for i in range(down_levels(image_size)):
            out = CRITIC_WIDTH * (1 << min(i, 3))
            self.downs.append(nn.Conv2d(c, out, 4, stride=2, padding=1))
            c = out
        self.fc = nn.Linear(c * 16, COND_DIM)
        self.lin = nn.Linear(COND_DIM, 1)
        self.proj = nn.Linear(condition_dim(), COND_DIM)

    def forward(self, x, cond):
        for d in self.downs:
            x = F.leaky_relu(d(x), 0.2)
        h = F.leaky_relu(self.fc(x.flatten(1)), 0.2)
        return self.lin(h).squeeze(1) + (h * self.proj(cond)).sum(1)


# ---- train.rs and model.rs -------------------------------------------------------------------


class Bench:
    def __init__(self, args, device):
        self.dev = device
        self.size = args.size
        self.feature_weight = args.feature_weight
        self.rng = random.Random(1)
        torch.manual_seed(1)
        self.enc = CnnEncoder(ENC_WIDTH, args.size, EMBED_DIM).to(device)
        self.text = TextEncoder(TEXT_BUCKETS, TEXT_DIM).to(device)
        self.composer = Composer(EMBED_DIM, TEXT_DIM, COMPOSE_HIDDEN).to(device)
        self.gen = Generator(args.size).to(device)
        self.critic = Critic(args.size).to(device)
        enc_params = (
            list(self.enc.parameters())
            + list(self.text.parameters())
            + list(self.composer.parameters())
        )
        self.opt_enc = torch.optim.Adam(enc_params, lr=LR_ENCODER, betas=(0.9, 0.999), eps=1e-8)
        self.opt_gen = torch.optim.Adam(
            self.gen.parameters(), lr=LR_GENERATOR, betas=(0.5, 0.9), eps=1e-8
        )
        self.opt_critic = torch.optim.Adam(
            self.critic.parameters(), lr=LR_CRITIC, betas=(0.5, 0.9), eps=1e-8
        )
        # The data `synth bench` trains on: (batch * 4).max(400) images, pairs between them.
        n = max(args.batch * 4, 400)
        self.images = (torch.rand(n, 3, args.size, args.size) * 2 - 1).to(device)
        self.pairs = []
        for i in range(n // 2):
            c1, c2 = CAPTIONS[i % len(CAPTIONS)]
            w1, w2 = words(c1), words(c2)
            texts = (subword_ids(w1), subword_ids(w2), subword_ids(w1 + ["and"] + w2))
            cand, tgt = self.rng.randrange(n), self.rng.randrange(n)
            self.pairs.append((cand, tgt, texts))
        self.batch = min(args.batch, len(self.pairs))
        self.embeddings = None

    def sample(self):
        """Distinct pairs, a caption variant each, and the image-condition mask (on the host,
        then copied, as the Rust trainer does)."""
        chosen = self.rng.sample(self.pairs, self.batch)
        ids = pad([p[2][self.rng.randrange(3)] for p in chosen], self.dev)
        has = [0.0 if self.rng.random() < TEXT_ONLY_PROB else 1.0 for _ in chosen]
        has = torch.tensor(has).view(-1, 1).to(self.dev)
        cand = torch.tensor([p[0] for p in chosen]).to(self.dev)
        tgt = torch.tensor([p[1] for p in chosen]).to(self.dev)
        return cand, tgt, ids, has

    def generator_condition(self, e_src, has, text):
        c = condition(e_src, has, text)
        if COMPOSE_CONDITION:
            c = torch.cat([c, self.composer(e_src, has, text)], 1)
        return c

    def encoder_step(self):
        cand, tgt, ids, has = self.sample()
        src = self.images.index_select(0, cand)
        target = self.images.index_select(0, tgt)
        es = self.enc(src)
        et = self.enc(target)
        t = self.text(ids)
        q = self.composer(es, has, t)
        logits = q @ et.t() / TEMPERATURE
        labels = torch.arange(logits.shape[0], device=self.dev)
        loss = F.cross_entropy(logits, labels)
        acc = (logits.argmax(-1) == labels).float().mean()
        self.opt_enc.zero_grad()
        loss.backward()
        self.opt_enc.step()
        return loss.item(), acc.item()

    def ensure_embeddings(self):
        if self.embeddings is not None:
            return
        # Stage 2 never changes the embedding space.
        for m in (self.enc, self.text, self.composer):
            m.requires_grad_(False)
        with torch.no_grad():
            self.embeddings = torch.cat([self.enc(x) for x in self.images.split(512)])

    def gan_step(self):
        self.ensure_embeddings()
        cand, tgt, ids, has = self.sample()
        b = cand.shape[0]
        es = self.embeddings.index_select(0, cand)
        et = self.embeddings.index_select(0, tgt)
        real = self.images.index_select(0, tgt)
        keep = [0.0 if self.rng.random() < PIXEL_DROP_PROB else 1.0 for _ in range(b)]
        keep = torch.tensor(keep).view(-1, 1, 1, 1).to(self.dev)
        px = self.images.index_select(0, cand) * keep * has.view(-1, 1, 1, 1)
        with torch.no_grad():
            cond = self.generator_condition(es, has, self.text(ids))

        # Critic (n_critic = 1), WGAN-GP.
        z = torch.randn(b, NOISE_DIM, device=self.dev)
        with torch.no_grad():
            fake = self.gen(z, cond, px)
        d_real = self.critic(real, cond)
        d_fake = self.critic(fake, cond)
        alpha = torch.rand(b, 1, 1, 1, device=self.dev)
        xhat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        d_hat = self.critic(xhat, cond)
        (grad,) = torch.autograd.grad(d_hat.sum(), xhat, create_graph=True, retain_graph=True)
        norm = (grad.flatten(1).square().sum(1) + 1e-12).sqrt()
        gp = (norm - 1).square().mean()
        w = d_real.mean() - d_fake.mean()
        critic_loss = -w + gp * GP_WEIGHT
        report = [gp.item(), w.item(), critic_loss.item()]
        self.opt_critic.zero_grad()
        critic_loss.backward()
        self.opt_critic.step()

        # Generator.
        z = torch.randn(b, NOISE_DIM, device=self.dev)
        fake = self.gen(z, cond, px)
        adv = -self.critic(fake, cond).mean()
        fake_maps, ea = self.enc.forward_features(fake)
        if self.feature_weight > 0:
            with torch.no_grad():
                real_maps, _ = self.enc.forward_features(real)
            feature = torch.stack(
                [(f - r).abs().mean() for f, r in zip(fake_maps, real_maps)]
            ).mean()
        else:
            feature = torch.zeros((), device=self.dev)

        def sq(x, y):
            return (x - y).square().sum(1)

        # Without an image condition there is no source to push away from.
        mask = has.squeeze(1)
        hinge = F.relu(sq(ea, et) - sq(ea, es) + TRIPLET_MARGIN)
        triplet = (hinge * mask).sum() / mask.sum().clamp_min(1.0)
        l1 = (fake - real).abs().mean()
        labels = torch.arange(b, device=self.dev)
        contrastive = F.cross_entropy(ea @ et.t() / TEMPERATURE, labels)
        loss = adv * ADV_WEIGHT + triplet * TRIPLET_WEIGHT
        if L1_WEIGHT > 0:
            loss = loss + l1 * L1_WEIGHT
        if CONTRASTIVE_WEIGHT > 0:
            loss = loss + contrastive * CONTRASTIVE_WEIGHT
        if self.feature_weight > 0:
            loss = loss + feature * self.feature_weight
        self.opt_gen.zero_grad()
        loss.backward()
        self.opt_gen.step()
        report += [adv.item(), triplet.item(), l1.item(), contrastive.item(), feature.item()]
        return report

    def generate_embed(self, es, has, px, text_ids, z, b):
        """model.rs `generate_tensor`: texts -> ids on the host each call, as the Rust side does."""
        ids = pad([text_ids] * b, self.dev)
        t = self.text(ids)
        img = self.gen(z, self.generator_condition(es, has, t), px)
        return img, self.enc(img)


def count(module):
    return sum(p.numel() for p in module.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument(
        "--feature-weight",
        type=float,
        default=2.0,
        help="perceptual loss weight (TrainConfig's default 2; 0: not computed)",
    )
    args = ap.parse_args()
    s = args.size
    if not (16 <= s <= 256 and s & (s - 1) == 0):
        ap.error("--size must be a power of two in 16..=256")
    if args.batch < 2 or args.iters < 1:
        ap.error("--batch must be at least 2 and --iters at least 1")
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("eager.py: CUDA is not available on this machine")
        dev = torch.device("cuda", 0)
        torch.backends.cudnn.benchmark = True  # as `synth` does on CUDA
    else:
        dev = torch.device("cpu")

    bench = Bench(args, dev)
    counts = {
        "enc": count(bench.enc),
        "text": count(bench.text),
        "compose": count(bench.composer),
        "gen": count(bench.gen),
        "critic": count(bench.critic),
    }
    line = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    print(f"parameters: {line}; total {sum(counts.values()):,}")
    if s == 32 and counts != EXPECTED_PARAMS_32:
        sys.exit(f"eager.py: parameter counts differ from the Rust model's {EXPECTED_PARAMS_32}")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def time_steps(step):
        for _ in range(2):
            step()
        sync()
        each = []
        for _ in range(args.iters):
            t0 = time.perf_counter()
            step()
            sync()
            each.append((time.perf_counter() - t0) * 1000.0)
        return statistics.median(each)

    enc_ms = time_steps(bench.encoder_step)
    gan_ms = time_steps(bench.gan_step)

    ibl = subword_ids(words("in black leather"))
    gen_ms = []
    for b in (1, 64):
        es = torch.randn(b, EMBED_DIM, device=dev)
        one = torch.ones(b, 1, device=dev)
        z = torch.zeros(b, NOISE_DIM, device=dev)
        px = torch.zeros(b, 3, s, s, device=dev)
        with torch.no_grad():
            for _ in range(3):
                bench.generate_embed(es, one, px, ibl, z, b)
            sync()
            each = []
            for _ in range(args.iters * 5):
                t0 = time.perf_counter()
                bench.generate_embed(es, one, px, ibl, z, b)
                sync()
                each.append((time.perf_counter() - t0) * 1000.0)
        gen_ms.append(statistics.median(each))

    if dev.type == "cuda":
        machine = f"CUDA device 0 ({torch.cuda.get_device_name(dev)})"
    else:
        machine = f"CPU, {torch.get_num_threads()} torch threads"
    print(
        f"machine: {machine}; torch {torch.__version__}; images {s}x{s}; "
        f"training batch {args.batch}"
    )
    print("| work | PyTorch eager ms |\n| --- | ---: |")
    print(f"| stage-1 step (encoders, contrastive), batch {args.batch} | {enc_ms:.2f} |")
    stage2 = "stage-2 step (WGAN-GP critic + generator; triplet, L1, contrastive, perceptual)"
    print(f"| {stage2}, batch {args.batch} | {gan_ms:.2f} |")
    print(f"| generate + embed, batch 1 | {gen_ms[0]:.3f} |")
    print(f"| generate + embed, batch 64 | {gen_ms[1]:.3f} |")


if __name__ == "__main__":
    main()
