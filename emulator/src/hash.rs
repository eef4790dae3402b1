//! The Dropbox content hash.
//!
//! The file is split into 4 MiB blocks (the last one may be shorter), each block is
//! hashed with SHA-256, the raw block digests are concatenated and that concatenation
//! is hashed with SHA-256 again. The result is hex-encoded (64 lowercase characters).
//! An empty file has no blocks, so its hash is SHA-256 of the empty string.
//!
//! [`ContentHasher`] computes the hash incrementally: the outer SHA-256 is fed each
//! block digest as soon as the block is complete, so the state is a few hundred bytes
//! however large the file is. Upload sessions keep one, which lets the emulator accept
//! multi-gigabyte uploads without storing their bytes.

use std::fmt;

use sha2::{Digest, Sha256};

/// The block size of the Dropbox content hash: 4 MiB.
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// An incremental Dropbox content hasher.
///
/// ```
/// use dropbox_emulator::{content_hash, ContentHasher};
///
/// let mut hasher = ContentHasher::new();
/// hasher.update(b"hello ");
/// hasher.update(b"world");
/// assert_eq!(hasher.finish(), content_hash(b"hello world"));
/// ```
#[derive(Clone, Default)]
pub struct ContentHasher {
    /// SHA-256 over the digests of the completed blocks.
    outer: Sha256,
    /// SHA-256 of the block being filled.
    block: Sha256,
    /// Bytes already fed into `block`.
    block_len: usize,
    /// Total bytes fed so far.
    total: u64,
}

impl ContentHasher {
    /// A hasher that has seen no data yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more file data, in any chunking.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        while !data.is_empty() {
            let take = (BLOCK_SIZE - self.block_len).min(data.len());
            let (head, tail) = data.split_at(take);
            self.block.update(head);
            self.block_len += take;
            data = tail;
            if self.block_len == BLOCK_SIZE {
                let digest = std::mem::take(&mut self.block).finalize();
                self.outer.update(digest);
                self.block_len = 0;
            }
        }
    }

    /// The number of bytes fed so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether no bytes have been fed yet.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The hex-encoded content hash of everything fed so far.
    pub fn finish(mut self) -> String {
        if self.block_len > 0 {
            let digest = self.block.finalize();
            self.outer.update(digest);
        }
        hex(&self.outer.finalize())
    }
}

impl fmt::Debug for ContentHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentHasher")
            .field("len", &self.total)
            .finish_non_exhaustive()
    }
}

/// The Dropbox content hash of `data`.
pub fn content_hash(data: &[u8]) -> String {
    let mut hasher = ContentHasher::new();
    hasher.update(data);
    hasher.finish()
}

/// Lowercase hex encoding.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors for `n` bytes of `'A'` (rclone's dbhash tests, re-checked with Python).
    const VECTORS: [(usize, &str); 6] = [
        (
            1,
            "1cd6ef71e6e0ff46ad2609d403dc3fee244417089aa4461245a4e4fe23a55e42",
        ),
        (
            4_194_303,
            "647c8627d70f7a7d13ce96b1e7710a771a55d41a62c3da490d92e56044d311fa",
        ),
        (
            4_194_304,
            "d4d63bac5b866c71620185392a8a6218ac1092454a2d16f820363b69852befa3",
        ),
        (
            4_194_305,
            "8f553da8d00d0bf509d8470e242888be33019c20c0544811f5b2b89e98360b92",
        ),
        (
            8_388_608,
            "e08b3ba1f538804075c5f939accdeaa9efc7b5c01865c94a41e78ca6550a88e7",
        ),
        (
            8_388_609,
            "02c8a4aefc2bfc9036f89a7098001865885938ca580e5c9e5db672385edd303c",
        ),
    ];

    #[test]
    fn empty_input_is_sha256_of_nothing() {
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn matches_published_vectors_in_one_call() {
        for (n, expected) in VECTORS {
            assert_eq!(content_hash(&vec![b'A'; n]), expected, "{n} bytes");
        }
    }

    #[test]
    fn chunking_does_not_matter() {
        let data = vec![b'A'; 8_388_609];
        for chunk in [2047, 65_536, 4_194_304, 16 * 1024 * 1024] {
            let mut hasher = ContentHasher::new();
            for piece in data.chunks(chunk) {
                hasher.update(piece);
            }
            assert_eq!(hasher.len(), data.len() as u64);
            assert_eq!(hasher.finish(), VECTORS[5].1, "chunk {chunk}");
        }
    }

    #[test]
    fn milky_way_outer_step() {
        // The official example's block digests; the outer step must give its published hash.
        let blocks = [
            "2a846fa617c3361fc117e1c5c1e1838c336b6a5cef982c1a2d9bdf68f2f1992a",
            "c68469027410ea393eba6551b9fa1e26db775f00eae70a0c3c129a0011a39cf9",
            "7376192de020925ce6c5ef5a8a0405e931b0a9a8c75517aacd9ca24a8a56818b",
        ];
        let mut outer = Sha256::new();
        for block in blocks {
            let raw: Vec<u8> = (0..block.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&block[i..i + 2], 16).unwrap())
                .collect();
            outer.update(raw);
        }
        assert_eq!(
            hex(&outer.finalize()),
            "485291fa0ee50c016982abbfa943957bcd231aae0492ccbaa22c58e3997b35e0"
        );
    }
}
