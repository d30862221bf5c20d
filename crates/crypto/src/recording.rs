//! One recording = one age file, split in two (docs/FORMAT.md):
//!
//! * the **header** (version line, one X25519 stanza per tenant recipient wrapping the random file
//!   key, header MAC) is kept in the metadata store;
//! * the **payload** (16-byte nonce, then STREAM chunks of 64 KiB plaintext + 16-byte tag, the
//!   last chunk flagged) is kept in the blob store.
//!
//! `header || payload` is a standard age file that `rage -d -i identity` decrypts. Destroying the
//! header destroys the only wrapped copy of the file key, so every copy of the payload — in
//! backups too — becomes noise (crypto-shredding, T7).

use crate::CryptoError;
use crate::tenant::{TenantIdentity, TenantRecipient};
use age::stream::{StreamReader, StreamWriter};
use secrecy::SecretBox;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// The age header of one recording, including its trailing newline.
#[derive(Clone, PartialEq, Eq)]
pub struct Header(Vec<u8>);

impl Header {
    pub fn from_bytes(b: Vec<u8>) -> Self {
        Self(b)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Header({} bytes)", self.0.len())
    }
}

fn recipients_of(r: &[TenantRecipient]) -> impl Iterator<Item = &dyn age::Recipient> {
    r.iter().map(|r| r.inner() as &dyn age::Recipient)
}

/// Encrypts plaintext written to it; the payload goes to `sink`, the header is returned by
/// [`RecordingWriter::finish`], which must be called: without it the payload lacks its final
/// chunk and will not decrypt (truncation is an error, never a silent short file).
pub struct RecordingWriter<W: Write> {
    inner: StreamWriter<Splitter<W>>,
}

impl<W: Write> RecordingWriter<W> {
    pub fn new(recipients: &[TenantRecipient], sink: W) -> Result<Self, CryptoError> {
        let enc = age::Encryptor::with_recipients(recipients_of(recipients))
            .map_err(|e| CryptoError::BadRecipient(e.to_string()))?;
        let inner = enc.wrap_output(Splitter {
            header: Vec::with_capacity(256),
            header_done: false,
            sink,
        })?;
        Ok(Self { inner })
    }

    pub fn finish(self) -> Result<(Header, W), CryptoError> {
        let split = self.inner.finish()?;
        if !split.header_done {
            return Err(CryptoError::Io(io::Error::other(
                "age header was never completed",
            )));
        }
        Ok((Header(split.header), split.sink))
    }
}

impl<W: Write> Write for RecordingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sends the age header to a buffer and everything after it to the sink. The header ends with
/// its MAC line, `--- <base64>\n`; no earlier line starts with `---` (stanza lines start with
/// `-> ` or are base64).
struct Splitter<W> {
    header: Vec<u8>,
    header_done: bool,
    sink: W,
}

impl<W: Write> Write for Splitter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.header_done {
            return self.sink.write(buf);
        }
        let before = self.header.len();
        self.header.extend_from_slice(buf);
        if let Some(mac_line) = find(&self.header, b"\n--- ")
            && let Some(nl) = self.header[mac_line + 1..].iter().position(|&b| b == b'\n')
        {
            let end = mac_line + 1 + nl + 1;
            let rest = self.header.split_off(end);
            self.header_done = true;
            self.sink.write_all(&rest)?;
        }
        debug_assert!(self.header.len() >= before || self.header_done);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Plaintext reader over a recording; `Seek` costs one chunk of work wherever it lands (age
/// STREAM chunks are independent), which is what makes ranged playback constant-time.
pub type PayloadReader<R> = StreamReader<Joined<R>>;

/// Opens a recording for reading. Fails with [`CryptoError::Integrity`] if the header was altered
/// or the identity is not one of its recipients; payload tampering surfaces as an
/// `io::ErrorKind::InvalidData` error from the chunk that was altered.
pub fn open_recording<R: Read + Seek>(
    header: &Header,
    payload: R,
    identity: &TenantIdentity,
) -> Result<PayloadReader<R>, CryptoError> {
    let joined = Joined::new(header.0.clone(), payload)?;
    let dec = age::Decryptor::new(joined).map_err(|_| CryptoError::Integrity)?;
    dec.decrypt(std::iter::once(identity.inner() as &dyn age::Identity))
        .map_err(|_| CryptoError::Integrity)
}

/// `header || payload` as one seekable stream, without copying the payload.
pub struct Joined<R> {
    header: Vec<u8>,
    payload: R,
    pos: u64,
    payload_len: u64,
}

impl<R: Read + Seek> Joined<R> {
    fn new(header: Vec<u8>, mut payload: R) -> io::Result<Self> {
        let payload_len = payload.seek(SeekFrom::End(0))?;
        payload.seek(SeekFrom::Start(0))?;
        Ok(Self {
            header,
            payload,
            pos: 0,
            payload_len,
        })
    }

    fn header_len(&self) -> u64 {
        self.header.len() as u64
    }
}

impl<R: Read + Seek> Read for Joined<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let hl = self.header_len();
        let n = if self.pos < hl {
            let start = usize::try_from(self.pos).map_err(io::Error::other)?;
            let n = buf.len().min(self.header.len() - start);
            buf[..n].copy_from_slice(&self.header[start..start + n]);
            n
        } else {
            self.payload.read(buf)?
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Joined<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let total = self.header_len() + self.payload_len;
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => total.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        let hl = self.header_len();
        self.payload
            .seek(SeekFrom::Start(target.saturating_sub(hl)))?;
        self.pos = target;
        Ok(target)
    }
}

/// Encrypts a small value (e.g. a caller's number) to the tenant's recipients as a whole age
/// file. Needs only public keys, so ingest nodes can do it.
pub fn encrypt_small(recipients: &[TenantRecipient], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut w = RecordingWriter::new(recipients, Vec::new())?;
    w.write_all(data)?;
    let (header, payload) = w.finish()?;
    let mut out = header.0;
    out.extend_from_slice(&payload);
    Ok(out)
}

pub fn decrypt_small(
    identity: &TenantIdentity,
    data: &[u8],
) -> Result<SecretBox<Vec<u8>>, CryptoError> {
    let dec = age::Decryptor::new_buffered(data).map_err(|_| CryptoError::Integrity)?;
    let mut r = dec
        .decrypt(std::iter::once(identity.inner() as &dyn age::Identity))
        .map_err(|_| CryptoError::Integrity)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .map_err(|_| CryptoError::Integrity)?;
    Ok(SecretBox::new(Box::new(out)))
}
