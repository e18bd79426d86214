//! What an agent offers when no resources are configured: the machine's cpus, memory and disk,
//! less a reserve for the system, and a default port range.

use meso::resources::{Resources, ResourcesError};
use std::path::Path;

/// Memory kept for the system, in MB.
pub const MEM_RESERVE_MB: u64 = 1024;
/// Smallest memory offered, in MB, however small the machine.
pub const MIN_MEM_MB: u64 = 128;
/// Disk kept for the system, in MB.
pub const DISK_RESERVE_MB: u64 = 5 * 1024;
/// Smallest disk offered, in MB.
pub const MIN_DISK_MB: u64 = 1024;
/// Ports offered to tasks.
pub const DEFAULT_PORTS: &str = "[31000-32000]";

/// The number of cpus this process may use (at least 1).
pub fn detect_cpus() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
}

/// Total memory in MB from `/proc/meminfo`, if readable.
pub fn total_mem_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo_total_mb(&text)
}

/// Reads `MemTotal:  <n> kB` out of the text of `/proc/meminfo`, in MB.
pub fn parse_meminfo_total_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    let unit = words.next().unwrap_or("kB");
    match unit {
        "kB" => Some(value / 1024),
        "B" => Some(value / (1024 * 1024)),
        _ => None,
    }
}

/// Total size in MB of the filesystem holding `path`, if it can be asked.
pub fn total_disk_mb(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stats` points to writable memory
    // of the right type; statvfs only writes to it.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let stats = unsafe { stats.assume_init() };
    // The field types differ between platforms; on some they are already u64.
    #[allow(clippy::unnecessary_cast)]
    let bytes = (stats.f_blocks as u64).checked_mul(stats.f_frsize as u64)?;
    Some(bytes / (1024 * 1024))
}

/// Memory offered for a machine of `total_mb`: the total less the reserve, at least the minimum.
pub fn offered_mem_mb(total_mb: u64) -> u64 {
    total_mb.saturating_sub(MEM_RESERVE_MB).max(MIN_MEM_MB)
}

/// Disk offered for a filesystem of `total_mb`: the total less the reserve, at least the minimum.
pub fn offered_disk_mb(total_mb: u64) -> u64 {
    total_mb.saturating_sub(DISK_RESERVE_MB).max(MIN_DISK_MB)
}

/// The resource text for the given cpus, memory and disk (in MB) and the default ports.
pub fn resources_text(cpus: u64, mem_mb: u64, disk_mb: u64) -> String {
    format!("cpus:{cpus};mem:{mem_mb};disk:{disk_mb};ports:{DEFAULT_PORTS}")
}

/// Detects the resources of this machine, with disk measured where `work_dir` lives.
pub fn detect_resources_at(work_dir: &Path) -> Result<Resources, ResourcesError> {
    let mem = offered_mem_mb(total_mem_mb().unwrap_or(0));
    // Measure the nearest existing ancestor: the work dir may not exist yet.
    let disk_total = work_dir
        .ancestors()
        .find(|p| p.exists())
        .and_then(total_disk_mb)
        .unwrap_or(0);
    let disk = offered_disk_mb(disk_total);
    Resources::parse(&resources_text(detect_cpus(), mem, disk))
}

/// Detects the resources of this machine, with disk measured at the current directory.
pub fn detect_resources() -> Result<Resources, ResourcesError> {
    detect_resources_at(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_is_read_in_mb() {
        let text = "MemTotal:       16303428 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_meminfo_total_mb(text), Some(15921));
        assert_eq!(parse_meminfo_total_mb("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total_mb("MemTotal: lots kB\n"), None);
        assert_eq!(parse_meminfo_total_mb("MemTotal:\n"), None);
        assert_eq!(parse_meminfo_total_mb("MemTotal: 5 pages\n"), None);
    }

    #[test]
    fn reserves_and_minimums() {
        assert_eq!(offered_mem_mb(16 * 1024), 15 * 1024);
        assert_eq!(offered_mem_mb(512), MIN_MEM_MB);
        assert_eq!(offered_mem_mb(0), MIN_MEM_MB);
        assert_eq!(offered_disk_mb(100 * 1024), 95 * 1024);
        assert_eq!(offered_disk_mb(10), MIN_DISK_MB);
    }

    #[test]
    fn the_machine_is_measured() {
        assert!(detect_cpus() >= 1);
        assert!(total_mem_mb().is_some_and(|mb| mb > 0));
        assert!(total_disk_mb(Path::new("/")).is_some_and(|mb| mb > 0));
        assert!(total_disk_mb(Path::new("/no/such/dir")).is_none());
        assert_eq!(
            resources_text(2, 1024, 2048),
            "cpus:2;mem:1024;disk:2048;ports:[31000-32000]"
        );
    }

    #[test]
    fn detected_resources_parse() {
        let dir = tempfile::tempdir().unwrap();
        let resources = detect_resources_at(&dir.path().join("not-yet")).unwrap();
        assert!(resources.cpus().millis() >= 1000);
        assert!(resources.mem().millis() >= (MIN_MEM_MB as i64) * 1000);
        assert!(resources.disk().millis() >= (MIN_DISK_MB as i64) * 1000);
    }
}
