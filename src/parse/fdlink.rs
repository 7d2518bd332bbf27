//! The targets of `/proc/PID/fd/N` links: what kind of descriptor each is, and a socket's inode.

/// The kind of an open file descriptor, from its link target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FdKind {
    /// `socket:[INODE]`.
    Socket,
    /// A path: regular files, devices, directories, memfds, deleted files.
    File,
    /// `pipe:[INODE]` (pipes and FIFOs opened by path show their path instead).
    Pipe,
    /// `anon_inode:...`: eventfd, epoll, inotify, timerfd, signalfd, io_uring, pidfd...
    AnonInode,
    /// Anything else, e.g. namespace handles (`net:[...]`).
    Other,
}

impl FdKind {
    /// Every kind, in label order.
    pub const ALL: [FdKind; 5] = [FdKind::Socket, FdKind::File, FdKind::Pipe, FdKind::AnonInode, FdKind::Other];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Socket => "socket",
            Self::File => "file",
            Self::Pipe => "pipe",
            Self::AnonInode => "anon_inode",
            Self::Other => "other",
        }
    }
}

/// Classifies a link target; for a socket, also returns its inode (`None` if the number is
/// garbled, so it is counted as a socket but matched with no table entry).
pub fn classify(target: &[u8]) -> (FdKind, Option<u64>) {
    if let Some(rest) = target.strip_prefix(b"socket:[") {
        let inode = rest.strip_suffix(b"]").and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| d.parse().ok());
        return (FdKind::Socket, inode);
    }
    let kind = if target.starts_with(b"/") {
        FdKind::File
    } else if target.starts_with(b"pipe:") {
        FdKind::Pipe
    } else if target.starts_with(b"anon_inode:") {
        FdKind::AnonInode
    } else {
        FdKind::Other
    };
    (kind, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_are_classified() {
        assert_eq!(classify(b"socket:[123456]"), (FdKind::Socket, Some(123456)));
        assert_eq!(classify(b"socket:[12x]"), (FdKind::Socket, None));
        assert_eq!(classify(b"pipe:[99]"), (FdKind::Pipe, None));
        assert_eq!(classify(b"anon_inode:[eventfd]"), (FdKind::AnonInode, None));
        assert_eq!(classify(b"anon_inode:inotify"), (FdKind::AnonInode, None));
        assert_eq!(classify(b"/var/log/app.log (deleted)"), (FdKind::File, None));
        assert_eq!(classify(b"/dev/null"), (FdKind::File, None));
        assert_eq!(classify(b"net:[4026531840]"), (FdKind::Other, None));
        assert_eq!(classify(b""), (FdKind::Other, None));
    }
}
