//! The one way coroner creates an output file: a new file under a unique temporary name
//! in the target directory, created with `O_CREAT | O_EXCL | O_NOFOLLOW` (so neither a
//! planted symlink nor a pre-existing file can redirect it, and a stale file from a crash
//! never blocks a later run), mode 0600 from its first byte, fsynced, renamed to its
//! final name (or to `NAME.partial` when a failed write is kept), the directory fsynced.
//! Dropped before that, it removes itself: a failure leaves nothing behind.
//!
//! A rename replaces a symlink planted at the final name instead of writing through it.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// Attempts at a fresh temporary name before giving up.
const NAME_ATTEMPTS: u32 = 64;

/// Distinguishes temporary names made by one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// An output file being written under a temporary name.
#[derive(Debug)]
pub struct OutputFile {
    file: File,
    temp: PathBuf,
    final_path: PathBuf,
    /// Set once the file was renamed or removed: nothing for `Drop` to do.
    settled: bool,
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The directory a path's file lives in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// Refuses a final path that names a directory (renaming onto it would fail late, after
/// the whole output was written) or has no file name.
fn check_final(path: &Path) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::Io {
            what: "create",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
        });
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::Io {
            what: "create",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::IsADirectory, "it is a directory"),
        }),
        _ => Ok(()),
    }
}

/// True when `path` is the output `final_path` itself, its kept `.partial`, or one of the
/// temporary names it is written under (errors about these are the output's).
pub fn belongs_to(path: &Path, final_path: &Path) -> bool {
    if path == final_path || path == with_suffix(final_path, ".partial") {
        return true;
    }
    let (Some(name), Some(of)) = (path.file_name(), final_path.file_name()) else {
        return false;
    };
    let (name, of) = (name.to_string_lossy(), of.to_string_lossy());
    parent_dir(path) == parent_dir(final_path)
        && name.starts_with(&format!(".{of}."))
        && name.ends_with(".tmp")
}

/// A temporary name next to `final_path`, hidden, unique per process and attempt.
fn temp_name(final_path: &Path, attempt: u32) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let unique = format!("{:x}-{n:x}-{nanos:x}-{attempt:x}", std::process::id());
    parent_dir(final_path).join(format!(".{name}.{unique}.tmp"))
}

/// Calls `make` with fresh temporary names next to `final_path` until one is free
/// (`make` fails with `EEXIST` for a taken one), and returns the name and what `make` made.
fn at_fresh_name<T>(
    final_path: &Path,
    make: impl Fn(&Path) -> rustix::io::Result<T>,
) -> Result<(PathBuf, T)> {
    let mut last = None;
    for attempt in 0..NAME_ATTEMPTS {
        let temp = temp_name(final_path, attempt);
        match make(&temp) {
            Ok(made) => return Ok((temp, made)),
            Err(rustix::io::Errno::EXIST) => last = Some(temp),
            Err(e) => return Err(io_err("create", &temp)(e.into())),
        }
    }
    let temp = last.unwrap_or_else(|| temp_name(final_path, 0));
    Err(io_err("create", &temp)(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free temporary name after {NAME_ATTEMPTS} attempts"),
    )))
}

impl OutputFile {
    /// Creates a new, empty temporary file (mode 0600) in the directory of `final_path`.
    pub fn create(final_path: &Path) -> Result<Self> {
        check_final(final_path)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let (temp, fd) = at_fresh_name(final_path, |temp| {
            rustix::fs::open(temp, flags, Mode::RUSR | Mode::WUSR)
        })?;
        let file = File::from(fd);
        // The umask can only take bits away; make the mode exact anyway.
        rustix::fs::fchmod(&file, Mode::RUSR | Mode::WUSR)
            .map_err(|e| io_err("chmod", &temp)(e.into()))?;
        Ok(Self {
            file,
            temp,
            final_path: final_path.to_path_buf(),
            settled: false,
        })
    }

    /// An output over a file opened elsewhere, for tests of write failures (`/dev/full`):
    /// `temp` is removed on drop as usual.
    #[cfg(test)]
    pub(crate) fn over(file: File, temp: PathBuf, final_path: PathBuf) -> Self {
        Self {
            file,
            temp,
            final_path,
            settled: false,
        }
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The open file, for writing.
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Where the file is being written now.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// The name it gets when complete.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// The name a kept, incomplete file gets: the final name plus `.partial`.
    pub fn partial_path(&self) -> PathBuf {
        with_suffix(&self.final_path, ".partial")
    }

    /// fsyncs the file, renames it to its final name and fsyncs the directory.
    pub fn commit(self) -> Result<PathBuf> {
        let to = self.final_path.clone();
        self.settle_as(to)
    }

    /// fsyncs the file, renames it to `NAME.partial` and fsyncs the directory.
    pub fn keep_partial(self) -> Result<PathBuf> {
        let to = self.partial_path();
        self.settle_as(to)
    }

    /// Removes the file.
    pub fn discard(mut self) -> Result<()> {
        self.settled = true;
        match fs::remove_file(&self.temp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &self.temp)(e)),
        }
    }

    fn settle_as(mut self, to: PathBuf) -> Result<PathBuf> {
        self.file.sync_all().map_err(io_err("fsync", &self.temp))?;
        fs::rename(&self.temp, &to).map_err(io_err("rename", &self.temp))?;
        self.settled = true;
        sync_dir(parent_dir(&to))?;
        Ok(to)
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.settled {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// fsyncs a directory, so a rename in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Makes a new directory (mode 0700) under a unique temporary name next to `final_path`,
/// for outputs that are directories; [`TempDir::commit`] renames it into place.
#[derive(Debug)]
pub struct TempDir {
    temp: PathBuf,
    final_path: PathBuf,
    settled: bool,
}

impl TempDir {
    /// Creates the temporary directory; `final_path` must not exist yet.
    pub fn create(final_path: &Path) -> Result<Self> {
        if final_path.file_name().is_none() {
            return Err(io_err("create", final_path)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no directory name",
            )));
        }
        if fs::symlink_metadata(final_path).is_ok() {
            return Err(io_err("create", final_path)(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it exists already",
            )));
        }
        let (temp, ()) = at_fresh_name(final_path, |temp| rustix::fs::mkdir(temp, Mode::RWXU))?;
        Ok(Self {
            temp,
            final_path: final_path.to_path_buf(),
            settled: false,
        })
    }

    /// The directory being filled.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// fsyncs the directory, renames it to its final name (refusing to replace anything
    /// that appeared there meanwhile) and fsyncs the parent.
    pub fn commit(mut self) -> Result<PathBuf> {
        sync_dir(&self.temp)?;
        let appeared = || {
            io_err("rename", &self.final_path)(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it appeared while the bundle was written",
            ))
        };
        // Atomically never over anything (rename(2) would replace an empty directory
        // that appeared meanwhile); file systems without RENAME_NOREPLACE get the check
        // and a plain rename.
        let cwd = rustix::fs::CWD;
        match rustix::fs::renameat_with(
            cwd,
            &self.temp,
            cwd,
            &self.final_path,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => return Err(appeared()),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                if fs::symlink_metadata(&self.final_path).is_ok() {
                    return Err(appeared());
                }
                fs::rename(&self.temp, &self.final_path).map_err(io_err("rename", &self.temp))?;
            }
            Err(e) => return Err(io_err("rename", &self.temp)(e.into())),
        }
        self.settled = true;
        sync_dir(parent_dir(&self.final_path))?;
        Ok(self.final_path.clone())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.settled {
            let _ = fs::remove_dir_all(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn commit_makes_a_0600_file_and_leaves_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("x.core.zst");
        let mut f = OutputFile::create(&out).unwrap();
        assert_eq!(mode(f.temp_path()), 0o600, "0600 from the first byte");
        f.file_mut().write_all(b"data").unwrap();
        assert_eq!(f.commit().unwrap(), out);
        assert_eq!(fs::read(&out).unwrap(), b"data");
        assert_eq!(mode(&out), 0o600);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn planted_symlinks_and_stale_files_are_replaced_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "v").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        let out = d.path().join("c.core.zst");
        std::os::unix::fs::symlink(&victim, with_suffix(&out, ".partial")).unwrap();
        let mut f = OutputFile::create(&out).unwrap();
        f.file_mut().write_all(b"kept").unwrap();
        let kept = f.keep_partial().unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"v");
        assert_eq!(mode(&victim), 0o644);
        assert!(!fs::symlink_metadata(&kept)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(mode(&kept), 0o600);

        // The final name itself planted as a symlink, and a stale 0644 partial.
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        let mut f = OutputFile::create(&out).unwrap();
        f.file_mut().write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"v");
        assert_eq!(fs::read(&out).unwrap(), b"new");
        assert_eq!(mode(&out), 0o600);
    }

    #[test]
    fn the_names_of_an_output() {
        let out = Path::new("d/x.core.zst");
        let f = temp_name(out, 3);
        assert!(belongs_to(&f, out), "{}", f.display());
        assert!(belongs_to(out, out));
        assert!(belongs_to(Path::new("d/x.core.zst.partial"), out));
        assert!(!belongs_to(Path::new("e/x.core.zst.partial"), out));
        assert!(!belongs_to(Path::new("d/.y.core.zst.1.tmp"), out));
        assert!(!belongs_to(Path::new("d/input.elf"), out));
    }

    #[test]
    fn dropped_or_discarded_files_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("x");
        drop(OutputFile::create(&out).unwrap());
        OutputFile::create(&out).unwrap().discard().unwrap();
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_as_output_is_refused_before_writing() {
        let d = tempfile::tempdir().unwrap();
        match OutputFile::create(d.path()).unwrap_err() {
            Error::Io { source, .. } => assert!(source.to_string().contains("directory")),
            e => panic!("{e}"),
        }
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn temp_dirs_are_0700_and_vanish_on_failure() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("bundle");
        let t = TempDir::create(&out).unwrap();
        assert_eq!(mode(t.path()), 0o700);
        fs::write(t.path().join("a"), "a").unwrap();
        drop(t);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
        let t = TempDir::create(&out).unwrap();
        fs::write(t.path().join("a"), "a").unwrap();
        assert_eq!(t.commit().unwrap(), out);
        assert_eq!(fs::read(out.join("a")).unwrap(), b"a");
        assert!(TempDir::create(&out).is_err());
    }

    #[test]
    fn a_directory_that_appears_meanwhile_is_not_replaced() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("bundle");
        let t = TempDir::create(&out).unwrap();
        fs::write(t.path().join("a"), "a").unwrap();
        // An empty directory created at the name while the bundle was written: a plain
        // rename(2) would replace it silently.
        fs::create_dir(&out).unwrap();
        let e = t.commit().unwrap_err().to_string();
        assert!(e.contains("rename"), "{e}");
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "the other directory is untouched"
        );
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "the temporary is gone"
        );
    }
}
