//! Raw webhook bodies as `events.body` keeps them (migration 0012): a zstd frame compressed with
//! a dictionary trained on real Sentry payloads (`body_encoding` 1), or the bytes as received
//! (`body_encoding` 0: rows stored before the migration, which are read as they are and never
//! rewritten, and bodies that compression would not make smaller).
//!
//! Each frame names its dictionary by id, so a retrained dictionary is added beside this one
//! ([`DICTIONARIES`]) and rows compressed with the old one still decode. Compression runs on the
//! request task ([`StoredBody::compress`], where the `IngestRequest` is built), not in the
//! single writer. A body that does not decode is an error ([`BodyError`], reported as a
//! [`CorruptRow`]), never an empty or default body.

use std::cell::RefCell;
use std::sync::LazyLock;

use bytes::Bytes;
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::zstd_safe;

use super::CorruptRow;

/// Trained by `scripts/train-dictionary.sh` from `shared/fixtures/sentry`.
static PAYLOADS_V1: &[u8] = include_bytes!("body/payloads.dict");

/// Every dictionary a stored frame may name; the first compresses new bodies.
static DICTIONARIES: &[&[u8]] = &[PAYLOADS_V1];

/// zstd's default: ~15 µs for an 8.7 KB payload with the dictionary, about a tenth of intake's
/// CPU per request; level 6 saved ~20% more bytes for three times the time.
const LEVEL: i32 = 3;

/// No stored body decodes to more than this: intake refuses bodies over 1 MiB, and a frame that
/// claims more is corrupt, not a reason to allocate.
const MAX_DECODED: u64 = 2 * 1024 * 1024;

/// Prepared once. A dictionary zstd refused (never expected: the tests load it) leaves bodies
/// stored raw rather than panicking.
static ENCODER: LazyLock<Option<EncoderDictionary<'static>>> =
    LazyLock::new(|| EncoderDictionary::try_copy(DICTIONARIES[0], LEVEL).ok());

/// The decoding dictionaries with their ids, prepared once.
static DECODERS: LazyLock<Vec<(u32, DecoderDictionary<'static>)>> = LazyLock::new(|| {
    DICTIONARIES
        .iter()
        .filter_map(|d| Some((dictionary_id(d), DecoderDictionary::try_copy(d).ok()?)))
        .collect()
});

thread_local! {
    /// One compression context per thread: making one costs more than compressing a body.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
}

/// How a row's `body` is stored (`events.body_encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyEncoding {
    Raw,
    Zstd,
}

impl BodyEncoding {
    pub(crate) fn as_i64(self) -> i64 {
        match self {
            Self::Raw => 0,
            Self::Zstd => 1,
        }
    }

    fn from_i64(v: i64) -> Result<Self, BodyError> {
        match v {
            0 => Ok(Self::Raw),
            1 => Ok(Self::Zstd),
            other => Err(BodyError::UnknownEncoding(other)),
        }
    }
}

/// A body ready for `events.body`, with its encoding.
#[derive(Debug, Clone)]
pub(crate) struct StoredBody {
    pub encoding: BodyEncoding,
    pub bytes: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("unknown body encoding {0}")]
    UnknownEncoding(i64),
    #[error("the zstd frame names no dictionary this build has (id {0:?})")]
    UnknownDictionary(Option<u32>),
    #[error("the zstd frame does not say a size up to {MAX_DECODED} bytes")]
    BadSize,
    #[error("zstd: {0}")]
    Zstd(#[from] std::io::Error),
}

impl StoredBody {
    /// Compressed with the newest dictionary; kept as it is when that is not smaller (or, never
    /// expected, when zstd fails: logged, and the row says `Raw`, so it reads back the same).
    pub(crate) fn compress(raw: &Bytes) -> StoredBody {
        match compress_bytes(raw) {
            Ok(z) if z.len() < raw.len() => StoredBody {
                encoding: BodyEncoding::Zstd,
                bytes: Bytes::from(z),
            },
            Ok(_) => Self::raw(raw),
            Err(e) => {
                tracing::error!(error = %e, "body stored uncompressed");
                Self::raw(raw)
            }
        }
    }

    fn raw(raw: &Bytes) -> StoredBody {
        StoredBody {
            encoding: BodyEncoding::Raw,
            bytes: raw.clone(),
        }
    }
}

fn compress_bytes(raw: &[u8]) -> Result<Vec<u8>, BodyError> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let c = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(new_compressor()?),
        };
        Ok(c.compress(raw)?)
    })
}

fn new_compressor() -> Result<Compressor<'static>, BodyError> {
    let dict = ENCODER.as_ref().ok_or(BodyError::UnknownDictionary(None))?;
    let mut c = Compressor::with_prepared_dictionary(dict)?;
    // Four bytes a row, so that a damaged frame is an error rather than a wrong body.
    c.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))?;
    Ok(c)
}

/// The body as received, from a row's `(body_encoding, body)`.
pub(crate) fn decode(encoding: i64, stored: Vec<u8>) -> Result<Vec<u8>, BodyError> {
    match BodyEncoding::from_i64(encoding)? {
        BodyEncoding::Raw => Ok(stored),
        BodyEncoding::Zstd => decompress(&stored),
    }
}

/// [`decode`] for `events` row `id`, its failure as the row's [`CorruptRow`].
pub(crate) fn decode_row(id: i64, encoding: i64, stored: Vec<u8>) -> Result<Vec<u8>, CorruptRow> {
    decode(encoding, stored).map_err(|e| CorruptRow {
        table: "events",
        id,
        field: "body",
        reason: e.to_string(),
    })
}

fn decompress(frame: &[u8]) -> Result<Vec<u8>, BodyError> {
    let id = zstd_safe::get_dict_id_from_frame(frame).map(|id| id.get());
    let dict = DECODERS
        .iter()
        .find(|(known, _)| Some(*known) == id)
        .map(|(_, d)| d)
        .ok_or(BodyError::UnknownDictionary(id))?;
    let size = match zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n <= MAX_DECODED => n as usize,
        _ => return Err(BodyError::BadSize),
    };
    let out = Decompressor::with_prepared_dictionary(dict)?.decompress(frame, size)?;
    // zstd checks the size a frame declares; this keeps a short frame from passing as a body.
    if out.len() != size {
        return Err(BodyError::BadSize);
    }
    Ok(out)
}

/// The id a dictionary declares in its header (0 for raw content, which ours never is).
fn dictionary_id(dict: &[u8]) -> u32 {
    zstd_safe::get_dict_id_from_dict(dict).map_or(0, |id| id.get())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod train;
