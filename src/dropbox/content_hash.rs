//! Dropbox's `content_hash`: SHA-256 of each 4 MiB block, concatenated, SHA-256 again, hex.
//! Used to skip files Dropbox already has and to verify every upload without downloading it.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Dropbox's block size for `content_hash`.
pub const BLOCK: usize = 4 * 1024 * 1024;

/// Incremental hasher: feed any chunk sizes, in order.
#[derive(Default, Clone)]
pub struct ContentHasher {
    overall: Sha256,
    block: Sha256,
    in_block: usize,
}

impl ContentHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (BLOCK - self.in_block).min(data.len());
            self.block.update(&data[..take]);
            self.in_block += take;
            data = &data[take..];
            if self.in_block == BLOCK {
                let digest = std::mem::take(&mut self.block).finalize();
                self.overall.update(digest);
                self.in_block = 0;
            }
        }
    }

    /// The 64-character lowercase hex digest.
    pub fn finish(mut self) -> String {
        if self.in_block > 0 {
            let digest = self.block.finalize();
            self.overall.update(digest);
        }
        hex(&self.overall.finalize())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `content_hash` of everything `r` yields.
pub fn of_reader(mut r: impl Read) -> io::Result<String> {
    let mut h = ContentHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(h.finish()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(bytes: &[u8]) -> String {
        let mut h = ContentHasher::new();
        h.update(bytes);
        h.finish()
    }

    #[test]
    fn empty_input_is_sha256_of_nothing() {
        assert_eq!(of(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    /// The vectors for n bytes of 'A' (rclone's dbhash tests, re-run with Python's hashlib).
    #[test]
    fn offline_vectors() {
        for (n, want) in [
            (1, "1cd6ef71e6e0ff46ad2609d403dc3fee244417089aa4461245a4e4fe23a55e42"),
            (4_194_303, "647c8627d70f7a7d13ce96b1e7710a771a55d41a62c3da490d92e56044d311fa"),
            (4_194_304, "d4d63bac5b866c71620185392a8a6218ac1092454a2d16f820363b69852befa3"),
            (4_194_305, "8f553da8d00d0bf509d8470e242888be33019c20c0544811f5b2b89e98360b92"),
            (8_388_608, "e08b3ba1f538804075c5f939accdeaa9efc7b5c01865c94a41e78ca6550a88e7"),
            (8_388_609, "02c8a4aefc2bfc9036f89a7098001865885938ca580e5c9e5db672385edd303c"),
        ] {
            let data = vec![b'A'; n];
            assert_eq!(of(&data), want, "n = {n}");
            // Any chunking gives the same result.
            for chunk in [2047, 65_536, 4_194_304, 16 << 20] {
                let mut h = ContentHasher::new();
                for c in data.chunks(chunk) {
                    h.update(c);
                }
                assert_eq!(h.finish(), want, "n = {n}, chunks of {chunk}");
            }
            assert_eq!(of_reader(&data[..]).unwrap(), want);
        }
    }

    /// Dropbox's published example (milky-way-nasa.jpg, 9,711,423 bytes): the final step over
    /// its three published block digests.
    #[test]
    fn official_vector_final_step() {
        let blocks = [
            "2a846fa617c3361fc117e1c5c1e1838c336b6a5cef982c1a2d9bdf68f2f1992a",
            "c68469027410ea393eba6551b9fa1e26db775f00eae70a0c3c129a0011a39cf9",
            "7376192de020925ce6c5ef5a8a0405e931b0a9a8c75517aacd9ca24a8a56818b",
        ];
        let mut overall = Sha256::new();
        for b in blocks {
            let raw: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&b[2 * i..2 * i + 2], 16).unwrap()).collect();
            overall.update(&raw);
        }
        assert_eq!(hex(&overall.finalize()), "485291fa0ee50c016982abbfa943957bcd231aae0492ccbaa22c58e3997b35e0");
    }
}
