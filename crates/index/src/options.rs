//! Index options (reloptions) and search knobs (GUCs), each with MIN/DEFAULT/MAX constants and a
//! validation that names the bad value.

use crate::Metric;

/// Fewest dimensions an indexed column may have.
pub const MIN_DIMS: usize = 1;
/// Most dimensions: a list's directory record (centroid) and a stored vector must each fit a page.
pub const MAX_DIMS: usize = 2000;

/// `lists` = 0 picks a count from the number of rows (see [`auto_lists`]).
pub const MIN_LISTS: u32 = 0;
pub const DEFAULT_LISTS: u32 = 0;
pub const MAX_LISTS: u32 = 32768;

/// Lists probed first by a scan (`synthsearch.nprobe`).
pub const MIN_NPROBE: u32 = 1;
pub const DEFAULT_NPROBE: u32 = 16;
pub const MAX_NPROBE: u32 = MAX_LISTS;

/// Most lists a scan may probe when it keeps going (`synthsearch.max_probes`); 0 means all lists,
/// so that a filtered query never loses rows.
pub const MIN_MAX_PROBES: u32 = 0;
pub const DEFAULT_MAX_PROBES: u32 = 0;
pub const MAX_MAX_PROBES: u32 = MAX_LISTS;

/// Sample rows per list for k-means training.
pub const MIN_SAMPLE_PER_LIST: u32 = 4;
pub const DEFAULT_SAMPLE_PER_LIST: u32 = 64;
pub const MAX_SAMPLE_PER_LIST: u32 = 1024;

/// Lloyd iterations after k-means++ seeding.
pub const MIN_KMEANS_ITERATIONS: u32 = 1;
pub const DEFAULT_KMEANS_ITERATIONS: u32 = 10;
pub const MAX_KMEANS_ITERATIONS: u32 = 100;

/// Memory a build may use (maintenance_work_mem), in bytes.
pub const MIN_MEMORY: usize = 1 << 20;
pub const DEFAULT_MEMORY: usize = 64 << 20;
pub const MAX_MEMORY: usize = usize::MAX / 2;

/// A user's mistake in an option, with the value named.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionsError {
    OutOfRange {
        name: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    Dims(usize),
    MemoryTooSmall {
        needed: usize,
        given: usize,
    },
}

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionsError::OutOfRange {
                name,
                value,
                min,
                max,
            } => {
                write!(
                    f,
                    "value {value} out of bounds for option \"{name}\": valid values are between {min} and {max}"
                )
            }
            OptionsError::Dims(d) => {
                write!(
                    f,
                    "column cannot have more than {MAX_DIMS} dimensions for this index, not {d}"
                )
            }
            OptionsError::MemoryTooSmall { needed, given } => write!(
                f,
                "memory required is {} kB, maintenance_work_mem is {} kB",
                needed.div_ceil(1024),
                given / 1024
            ),
        }
    }
}

impl std::error::Error for OptionsError {}

fn in_range(name: &'static str, value: i64, min: i64, max: i64) -> Result<(), OptionsError> {
    if value < min || value > max {
        return Err(OptionsError::OutOfRange {
            name,
            value,
            min,
            max,
        });
    }
    Ok(())
}

pub fn validate_lists(v: i64) -> Result<u32, OptionsError> {
    in_range("lists", v, MIN_LISTS as i64, MAX_LISTS as i64).map(|_| v as u32)
}
pub fn validate_nprobe(v: i64) -> Result<u32, OptionsError> {
    in_range("nprobe", v, MIN_NPROBE as i64, MAX_NPROBE as i64).map(|_| v as u32)
}
pub fn validate_max_probes(v: i64) -> Result<u32, OptionsError> {
    in_range(
        "max_probes",
        v,
        MIN_MAX_PROBES as i64,
        MAX_MAX_PROBES as i64,
    )
    .map(|_| v as u32)
}
pub fn validate_dims(d: usize) -> Result<usize, OptionsError> {
    if !(MIN_DIMS..=MAX_DIMS).contains(&d) {
        return Err(OptionsError::Dims(d));
    }
    Ok(d)
}

/// sqrt(rows), the usual IVF rule, at least 1.
pub fn auto_lists(rows: u64) -> u32 {
    ((rows as f64).sqrt().round() as u32).clamp(1, MAX_LISTS)
}

/// What `CREATE INDEX` fixes.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOptions {
    pub dims: usize,
    pub metric: Metric,
    /// 0: sqrt of the rows the build sees.
    pub lists: u32,
    pub sample_per_list: u32,
    pub kmeans_iterations: u32,
    /// Bytes the build may hold at once.
    pub memory: usize,
    pub seed: u64,
    /// Worker threads for training and assignment; 0: rayon's default (all cores).
    pub threads: usize,
}

impl BuildOptions {
    pub fn new(dims: usize, metric: Metric) -> BuildOptions {
        BuildOptions {
            dims,
            metric,
            lists: DEFAULT_LISTS,
            sample_per_list: DEFAULT_SAMPLE_PER_LIST,
            kmeans_iterations: DEFAULT_KMEANS_ITERATIONS,
            memory: DEFAULT_MEMORY,
            seed: 0x5eed,
            threads: 0,
        }
    }

    pub fn validate(&self) -> Result<(), OptionsError> {
        validate_dims(self.dims)?;
        validate_lists(self.lists as i64)?;
        in_range(
            "sample_per_list",
            self.sample_per_list as i64,
            MIN_SAMPLE_PER_LIST as i64,
            MAX_SAMPLE_PER_LIST as i64,
        )?;
        in_range(
            "kmeans_iterations",
            self.kmeans_iterations as i64,
            MIN_KMEANS_ITERATIONS as i64,
            MAX_KMEANS_ITERATIONS as i64,
        )?;
        if self.memory < MIN_MEMORY {
            return Err(OptionsError::MemoryTooSmall {
                needed: MIN_MEMORY,
                given: self.memory,
            });
        }
        Ok(())
    }
}

/// What a scan may be told (GUCs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    pub nprobe: u32,
    /// 0: keep going through every list.
    pub max_probes: u32,
    /// What a scan does when the first `nprobe` lists are used up.
    pub iterative: Iterative,
    /// After the first round, no further round starts once this many codes were scanned
    /// (pgvector's `max_scan_tuples`); 0: no cap.
    pub max_scan_tuples: u64,
}

/// pgvector 0.8's `iterative_scan` modes, for when the first `nprobe` lists run dry (a WHERE
/// clause that drops rows, or a large LIMIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Iterative {
    /// Only the first `nprobe` lists.
    Off,
    /// Probe further lists; a row of a later round can be nearer than one already returned.
    #[default]
    Relaxed,
    /// Probe further lists, but drop a row of a later round that is nearer than one already
    /// returned: rows always come back in distance order (some of the nearest may be missing).
    Strict,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            nprobe: DEFAULT_NPROBE,
            max_probes: DEFAULT_MAX_PROBES,
            iterative: Iterative::default(),
            max_scan_tuples: 0,
        }
    }
}

impl ScanOptions {
    pub fn validate(&self) -> Result<(), OptionsError> {
        validate_nprobe(self.nprobe as i64)?;
        validate_max_probes(self.max_probes as i64)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_rejected() {
        assert!(validate_lists(-1).is_err());
        assert!(validate_lists(MAX_LISTS as i64 + 1).is_err());
        assert_eq!(validate_lists(100), Ok(100));
        assert!(validate_nprobe(0).is_err());
        assert!(validate_max_probes(-5).is_err());
        assert!(validate_dims(0).is_err());
        assert!(validate_dims(MAX_DIMS + 1).is_err());
        let e = validate_nprobe(0).unwrap_err().to_string();
        assert!(e.contains("\"nprobe\"") && e.contains('0'), "{e}");
        let mut o = BuildOptions::new(8, Metric::L2);
        o.kmeans_iterations = 0;
        assert!(o.validate().is_err());
        o.kmeans_iterations = 5;
        o.memory = 10;
        assert!(matches!(
            o.validate(),
            Err(OptionsError::MemoryTooSmall { .. })
        ));
        assert!(
            ScanOptions {
                nprobe: 0,
                ..ScanOptions::default()
            }
            .validate()
            .is_err()
        );
        assert!(ScanOptions::default().validate().is_ok());
    }

    #[test]
    fn auto_lists_is_sqrt() {
        assert_eq!(auto_lists(0), 1);
        assert_eq!(auto_lists(1_000_000), 1000);
    }
}
