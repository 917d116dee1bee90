//! A filesystem for power-loss tests, after the idea of LazyFS: everything written lives in
//! memory, and only what was made durable survives a "power cut". A file's bytes become durable
//! when the file is fsync'd (or fdatasync'd); a name in a directory (a new file, a removal, a
//! rename) when that directory is fsync'd. `cut_power` forgets everything else.
//!
//! It runs inside the test process through the `fuser` crate (pure Rust, mounted with mount(2),
//! so it needs root and /dev/fuse). The kernel caches nothing: entries and attributes have no
//! time to live, and a cut unmounts, so what the next process reads is what survived.

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the kernel may keep of an entry or attributes: nothing.
const NO_CACHE: Duration = Duration::ZERO;

enum Body {
    File {
        data: Vec<u8>,
        /// The bytes as of the last fsync; `None` before the first.
        durable: Option<Vec<u8>>,
    },
    Dir {
        entries: BTreeMap<OsString, u64>,
        /// The entries as of the last fsync of this directory.
        durable: BTreeMap<OsString, u64>,
    },
}

struct Node {
    mode: u32,
    body: Body,
}

/// The whole filesystem; shared by every mount of one `LazyFs`.
struct State {
    nodes: HashMap<u64, Node>,
    next: u64,
    /// Counts, for the test's report.
    fsyncs: u64,
    writes: u64,
}

impl State {
    fn new() -> State {
        let root = Node { mode: 0o755, body: Body::Dir { entries: BTreeMap::new(), durable: BTreeMap::new() } };
        State { nodes: HashMap::from([(1, root)]), next: 2, fsyncs: 0, writes: 0 }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let node = self.nodes.get(&ino)?;
        let (kind, size, nlink) = match &node.body {
            Body::File { data, .. } => (FileType::RegularFile, data.len() as u64, 1),
            Body::Dir { .. } => (FileType::Directory, 0, 2),
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind,
            perm: node.mode as u16 & 0o7777,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        })
    }

    fn entries(&mut self, dir: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        match self.nodes.get_mut(&dir).map(|n| &mut n.body) {
            Some(Body::Dir { entries, .. }) => Ok(entries),
            Some(_) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn file(&mut self, ino: u64) -> Result<(&mut Vec<u8>, &mut Option<Vec<u8>>), Errno> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::File { data, durable }) => Ok((data, durable)),
            Some(_) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn make(&mut self, parent: u64, name: &OsStr, mode: u32, body: Body) -> Result<u64, Errno> {
        let ino = self.next;
        let entries = self.entries(parent)?;
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        entries.insert(name.to_owned(), ino);
        self.next += 1;
        self.nodes.insert(ino, Node { mode, body });
        Ok(ino)
    }

    /// The power cut: every file back to its last fsync'd bytes, every directory back to its
    /// last fsync'd entries, and whatever is no longer reachable forgotten.
    fn cut_power(&mut self) {
        for node in self.nodes.values_mut() {
            match &mut node.body {
                Body::File { data, durable } => *data = durable.clone().unwrap_or_default(),
                Body::Dir { entries, durable } => *entries = durable.clone(),
            }
        }
        let mut reachable = vec![1u64];
        let mut seen = std::collections::HashSet::new();
        while let Some(ino) = reachable.pop() {
            if !seen.insert(ino) {
                continue;
            }
            if let Some(Node { body: Body::Dir { entries, .. }, .. }) = self.nodes.get(&ino) {
                reachable.extend(entries.values().copied());
            }
        }
        self.nodes.retain(|ino, _| seen.contains(ino));
    }
}

/// One mount's view of the shared state.
struct Mounted(Arc<Mutex<State>>);

impl Mounted {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Filesystem for Mounted {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut state = self.state();
        let found = state.entries(parent.0).map(|e| e.get(name).copied());
        match found {
            Ok(Some(ino)) => match state.attr(ino) {
                Some(attr) => reply.entry(&NO_CACHE, &attr, Generation(0)),
                None => reply.error(Errno::ENOENT),
            },
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().attr(ino.0) {
            Some(attr) => reply.attr(&NO_CACHE, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.state();
        if let Some(size) = size {
            match state.file(ino.0) {
                Ok((data, _)) => data.resize(size as usize, 0),
                Err(e) => return reply.error(e),
            }
        }
        if let (Some(mode), Some(node)) = (mode, state.nodes.get_mut(&ino.0)) {
            node.mode = mode;
        }
        match state.attr(ino.0) {
            Some(attr) => reply.attr(&NO_CACHE, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let mut state = self.state();
        let body = Body::Dir { entries: BTreeMap::new(), durable: BTreeMap::new() };
        match state.make(parent.0, name, mode & !umask, body) {
            Ok(ino) => reply.entry(&NO_CACHE, &state.attr(ino).expect("just made"), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        match state.make(parent.0, name, mode & !umask, Body::File { data: Vec::new(), durable: None }) {
            Ok(ino) => {
                let attr = state.attr(ino).expect("just made");
                reply.created(&NO_CACHE, &attr, Generation(0), FileHandle(ino), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.state().entries(parent.0).map(|e| e.remove(name)) {
            Ok(Some(_)) => reply.ok(),
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.unlink(req, parent, name, reply)
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        let ino = match state.entries(parent.0).map(|e| e.remove(name)) {
            Ok(Some(ino)) => ino,
            Ok(None) => return reply.error(Errno::ENOENT),
            Err(e) => return reply.error(e),
        };
        match state.entries(newparent.0) {
            Ok(entries) => {
                entries.insert(newname.to_owned(), ino);
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(ino.0), FopenFlags::empty())
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut state = self.state();
        match state.file(ino.0) {
            Ok((data, _)) => {
                let start = (offset as usize).min(data.len());
                let end = (start + size as usize).min(data.len());
                reply.data(&data[start..end])
            }
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        bytes: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = self.state();
        state.writes += 1;
        match state.file(ino.0) {
            Ok((data, _)) => {
                let end = offset as usize + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[offset as usize..end].copy_from_slice(bytes);
                reply.written(bytes.len() as u32)
            }
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _owner: LockOwner, reply: ReplyEmpty) {
        reply.ok()
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let mut state = self.state();
        state.fsyncs += 1;
        match state.file(ino.0) {
            Ok((data, durable)) => {
                *durable = Some(data.clone());
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let mut state = self.state();
        let entries: Vec<(OsString, u64)> = match state.entries(ino.0) {
            Ok(entries) => entries.iter().map(|(n, i)| (n.clone(), *i)).collect(),
            Err(e) => return reply.error(e),
        };
        let listed = [(OsString::from("."), ino.0), (OsString::from(".."), ino.0)].into_iter().chain(entries);
        for (i, (name, child)) in listed.enumerate().skip(offset as usize) {
            let kind = match state.nodes.get(&child).map(|n| &n.body) {
                Some(Body::Dir { .. }) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok()
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let mut state = self.state();
        state.fsyncs += 1;
        match state.nodes.get_mut(&ino.0).map(|n| &mut n.body) {
            Some(Body::Dir { entries, durable }) => {
                *durable = entries.clone();
                reply.ok()
            }
            Some(_) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }
}

/// A lazy filesystem mounted at a directory of the test's.
pub struct LazyFs {
    state: Arc<Mutex<State>>,
    mountpoint: PathBuf,
    session: Option<fuser::BackgroundSession>,
}

impl LazyFs {
    /// Mounts an empty filesystem at `mountpoint`; `Err` says why it cannot be (not root, no
    /// /dev/fuse), for the test to print as its reason to skip.
    pub fn mount(mountpoint: &Path) -> Result<LazyFs, String> {
        let mut fs =
            LazyFs { state: Arc::new(Mutex::new(State::new())), mountpoint: mountpoint.to_owned(), session: None };
        fs.remount()?;
        Ok(fs)
    }

    fn remount(&mut self) -> Result<(), String> {
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("hookgate-lazyfs".into()), MountOption::RW];
        let session = fuser::spawn_mount2(Mounted(self.state.clone()), &self.mountpoint, &config)
            .map_err(|e| format!("cannot mount a FUSE filesystem at {}: {e}", self.mountpoint.display()))?;
        self.session = Some(session);
        Ok(())
    }

    /// Cuts the power: unmounts (every process using it must be gone), forgets everything not
    /// made durable, and mounts what is left.
    pub fn cut_power(&mut self) -> Result<(), String> {
        drop(self.session.take());
        self.state.lock().unwrap_or_else(|p| p.into_inner()).cut_power();
        self.remount()
    }

    /// Writes and fsyncs seen so far.
    pub fn counts(&self) -> (u64, u64) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.writes, state.fsyncs)
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        drop(self.session.take());
    }
}
