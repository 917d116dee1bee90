//! A file mapped into memory, shared with every process that maps it: the map log's segments
//! and its counters (`mod.rs`). Its room is allocated on the disk when it is made, so a full disk
//! is an error here rather than a `SIGBUS` at a later write.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

pub struct Mapped {
    base: NonNull<u8>,
    len: usize,
    file: File,
}

// The mapping is only written through `write`, whose callers give each writer its own bytes,
// and through atomics.
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps `path`, made `len` bytes long (zeros) when it is shorter; `create_new` refuses a file
    /// that exists.
    pub fn open(path: &Path, len: usize, create_new: bool) -> std::io::Result<Mapped> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if create_new {
            options.create_new(true);
        } else {
            options.create(true);
        }
        let file = options.open(path)?;
        let fd = file.as_raw_fd();
        // SAFETY: plain calls on a file descriptor this function owns.
        let allocated = unsafe { libc::posix_fallocate(fd, 0, len as libc::off_t) };
        if allocated != 0 {
            return Err(std::io::Error::from_raw_os_error(allocated));
        }
        // SAFETY: a new shared mapping of the whole file; nothing else refers to it yet.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(|| std::io::Error::other("mmap gave a null address"))?;
        Ok(Mapped { base, len, file })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies `bytes` to `at`.
    ///
    /// # Safety
    /// No other thread or process reads or writes `at..at + bytes.len()` meanwhile: the caller
    /// reserved that range for this write (`Log::append` holds the lock that hands it out).
    pub unsafe fn write(&self, at: usize, bytes: &[u8]) {
        assert!(at.checked_add(bytes.len()).is_some_and(|end| end <= self.len), "a write past the mapping");
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.as_ptr().add(at), bytes.len());
    }

    /// The `i`th 8-byte word, shared by every process mapping the file.
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!((i + 1) * 8 <= self.len, "a word past the mapping");
        // SAFETY: in the mapping, 8-byte aligned (mappings start on a page), and only ever used
        // as atomics.
        unsafe { &*self.base.as_ptr().add(i * 8).cast::<AtomicU64>() }
    }

    /// Takes what was written to the disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, no longer used.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}
