//! The backup file's encryption. A file is `MAGIC | header length (u32 BE) | header | chunks`;
//! the header (the manifest, with the wrapped per-backup key) is not secret but is bound into
//! every chunk. A chunk is `length (u32 BE) | last (u8) | nonce | ciphertext | tag`, sealed under
//! the per-backup key with AAD = (`keyward/backup`, SHA-256 of the header, chunk index, last):
//! a chunk altered, dropped, reordered, spliced in from another backup or cut off after, and a
//! header changed, all fail to open.
use crate::{Aad, CryptoError, Key256};

/// The first bytes of a backup file.
pub const BACKUP_MAGIC: &[u8; 8] = b"KWBACKUP";
/// Plaintext bytes per chunk (the last may hold fewer).
pub const BACKUP_CHUNK: usize = 64 * 1024;
/// The largest header a reader accepts.
pub const BACKUP_MAX_HEADER: usize = 1024 * 1024;
/// The largest sealed chunk a reader accepts.
pub const BACKUP_MAX_SEALED: usize = BACKUP_CHUNK + 64;

fn chunk_aad(header_digest: &[u8], index: u64, last: bool) -> Aad {
    Aad::new("keyward/backup").part(header_digest).part(&index.to_be_bytes()).part(&[u8::from(last)])
}

fn digest(header: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, header).as_ref().to_vec()
}

/// The file's start: magic, header length and header.
pub fn backup_preamble(header: &[u8]) -> Vec<u8> {
    let len = u32::try_from(header.len()).expect("a backup header is far below 4 GiB");
    let mut out = Vec::with_capacity(12 + header.len());
    out.extend_from_slice(BACKUP_MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(header);
    out
}

/// Seals a backup's chunks, in order.
pub struct BackupSealer {
    key: Key256,
    header_digest: Vec<u8>,
    index: u64,
}

impl BackupSealer {
    /// A sealer for the chunks that follow `header`.
    pub fn new(key: Key256, header: &[u8]) -> Self {
        Self { key, header_digest: digest(header), index: 0 }
    }

    /// The next chunk, framed (`length | last | sealed`).
    pub fn seal(&mut self, plaintext: &[u8], last: bool) -> Vec<u8> {
        let mut sealed = Vec::with_capacity(plaintext.len() + 64);
        self.key.aead().seal_into(&chunk_aad(&self.header_digest, self.index, last), plaintext, &mut sealed);
        self.index += 1;
        let len = u32::try_from(sealed.len() + 1).expect("a chunk is far below 4 GiB");
        let mut out = Vec::with_capacity(sealed.len() + 5);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(u8::from(last));
        out.extend_from_slice(&sealed);
        out
    }
}

/// Opens a backup's chunks, in order.
pub struct BackupOpener {
    key: Key256,
    header_digest: Vec<u8>,
    index: u64,
}

impl BackupOpener {
    /// An opener for the chunks that follow `header`.
    pub fn new(key: Key256, header: &[u8]) -> Self {
        Self { key, header_digest: digest(header), index: 0 }
    }

    /// Opens the next chunk's frame body (`last | sealed`, without its length): its plaintext,
    /// and whether it is the last.
    pub fn open(&mut self, frame: &[u8]) -> Result<(Vec<u8>, bool), CryptoError> {
        let (&flag, sealed) = frame.split_first().ok_or(CryptoError::DecryptionFailed)?;
        let last = match flag {
            0 => false,
            1 => true,
            _ => return Err(CryptoError::DecryptionFailed),
        };
        let plain = self.key.aead().open(&chunk_aad(&self.header_digest, self.index, last), sealed)?;
        self.index += 1;
        Ok((plain, last))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key() -> Key256 {
        Key256::from_slice(&[7; 32]).expect("key")
    }

    /// Seals `chunks` after `header`, returning the framed chunks.
    fn sealed(header: &[u8], chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = BackupSealer::new(key(), header);
        chunks.iter().enumerate().map(|(i, c)| s.seal(c, i + 1 == chunks.len())).collect()
    }

    fn open_all(header: &[u8], frames: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, CryptoError> {
        let mut o = BackupOpener::new(key(), header);
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let (plain, last) = o.open(&f[4..])?;
            assert_eq!(last, i + 1 == frames.len());
            out.push(plain);
        }
        Ok(out)
    }

    #[test]
    fn chunks_round_trip_and_resist_reordering_splicing_and_a_changed_header() {
        let frames = sealed(b"header-a", &[b"one", b"two", b"three"]);
        assert_eq!(
            open_all(b"header-a", &frames).expect("opens"),
            [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        assert!(open_all(b"header-b", &frames).is_err(), "the header is bound");
        let swapped = vec![frames[1].clone(), frames[0].clone(), frames[2].clone()];
        assert!(open_all(b"header-a", &swapped).is_err(), "the order is bound");
        let other = sealed(b"header-a", &[b"one", b"two", b"three"]);
        let spliced = vec![frames[0].clone(), other[1].clone(), frames[2].clone()];
        assert!(open_all(b"header-a", &spliced).is_ok(), "same key, same header: only a different key stops this");
        let mut flipped = frames[2].clone();
        flipped[4] = 0; // claims not to be the last
        assert!(open_all(b"header-a", &[frames[0].clone(), frames[1].clone(), flipped]).is_err());
    }

    #[test]
    fn a_chunk_under_another_backups_key_does_not_open() {
        let mut a = BackupSealer::new(key(), b"h");
        let mut b = BackupSealer::new(Key256::generate(), b"h");
        let (fa, fb) = (a.seal(b"x", false), b.seal(b"x", false));
        let mut o = BackupOpener::new(key(), b"h");
        assert!(o.open(&fb[4..]).is_err());
        assert!(BackupOpener::new(key(), b"h").open(&fa[4..]).is_ok());
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_refused(data in proptest::collection::vec(any::<u8>(), 1..200), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let frames = sealed(b"h", &[&data]);
            let mut f = frames[0].clone();
            let i = 4 + at.index(f.len() - 4);
            f[i] ^= 1 << bit;
            prop_assert!(BackupOpener::new(key(), b"h").open(&f[4..]).is_err());
        }
    }
}
