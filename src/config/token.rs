//! Secret tokens read from files (mounted Kubernetes Secrets).

use std::path::Path;

/// Shortest token accepted, bytes.
pub const MIN_TOKEN_BYTES: usize = 16;
/// Longest token file read, bytes.
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The token in `file`: its content without surrounding whitespace, at least
/// [`MIN_TOKEN_BYTES`] long. The error names the file and the problem, never the token.
pub fn read_token(file: &Path) -> Result<Vec<u8>, String> {
    // A regular file only, opened without blocking (see crate::fsread).
    let bytes = crate::fsread::read_capped(file, MAX_TOKEN_FILE_BYTES).map_err(|e| e.to_string())?;
    let token = bytes.trim_ascii();
    if token.len() < MIN_TOKEN_BYTES {
        return Err(format!(
            "{}: the token must be at least {MIN_TOKEN_BYTES} bytes, got {}",
            file.display(),
            token.len()
        ));
    }
    if token.iter().any(|b| !b.is_ascii_graphic()) {
        return Err(format!("{}: the token must be printable ASCII without spaces", file.display()));
    }
    Ok(token.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_token_files_are_named_without_the_token() {
        let dir = std::env::temp_dir().join(format!("leakwatch-admin-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "short").unwrap();
        let err = read_token(&file).unwrap_err();
        assert!(err.contains("at least 16") && !err.contains("short"), "{err}");
        std::fs::write(&file, "has a space in the middle of it").unwrap();
        assert!(read_token(&file).unwrap_err().contains("printable"));
        std::fs::write(&file, vec![b'a'; 5000]).unwrap();
        assert!(read_token(&file).unwrap_err().contains("larger than"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(read_token(&file).unwrap_err().contains("token"));
    }
}
