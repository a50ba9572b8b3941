//! One page of a kdump-compressed dump: its descriptor (`page_desc`: file offset, stored
//! size, compression flag) and its bytes, decompressed into exactly one page. Every
//! decompressor writes into the page's buffer and no further, so a hostile page costs at
//! most a page.

use super::header::{
    BLOCK_SIZE, COMPRESSED_LZO, COMPRESSED_SNAPPY, COMPRESSED_ZLIB, COMPRESSED_ZSTD,
};

/// Bytes of one `page_desc`.
pub const DESC_BYTES: u64 = 24;

/// `page_desc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageDesc {
    /// File offset of the stored bytes.
    pub offset: u64,
    /// Stored size.
    pub size: u32,
    /// `DUMP_DH_COMPRESSED_*` of this page, 0 when stored as is.
    pub flags: u32,
}

impl PageDesc {
    /// Decodes the 24 bytes of a descriptor.
    pub fn parse(b: &[u8; 24]) -> PageDesc {
        let mut o = [0u8; 8];
        o.copy_from_slice(&b[..8]);
        PageDesc {
            offset: u64::from_le_bytes(o),
            size: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            flags: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        }
    }
}

/// Decompressor state kept between pages (zlib's is tens of KiB: allocating and clearing
/// it for each page cost a tenth of a streamed capture's CPU).
#[derive(Default)]
pub struct Inflaters {
    zlib: Option<flate2::Decompress>,
}

/// Decompresses `stored` (compressed as `flags` says) into `page` (one page); the error
/// says what is wrong.
pub fn decompress(flags: u32, stored: &[u8], page: &mut [u8]) -> Result<(), String> {
    decompress_with(&mut Inflaters::default(), flags, stored, page)
}

/// [`decompress`] reusing `state`.
pub fn decompress_with(
    state: &mut Inflaters,
    flags: u32,
    stored: &[u8],
    page: &mut [u8],
) -> Result<(), String> {
    let want = page.len();
    let got = match flags {
        0 => {
            if stored.len() != want {
                return Err(format!(
                    "an uncompressed page of {} bytes, not {want}",
                    stored.len()
                ));
            }
            page.copy_from_slice(stored);
            want
        }
        COMPRESSED_ZLIB => {
            let z = match &mut state.zlib {
                Some(z) => {
                    z.reset(true);
                    z
                }
                None => state.zlib.insert(flate2::Decompress::new(true)),
            };
            match z.decompress(stored, page, flate2::FlushDecompress::Finish) {
                Ok(flate2::Status::StreamEnd) => z.total_out() as usize,
                Ok(_) => return Err("a zlib page that does not end within a page".into()),
                Err(e) => return Err(format!("a zlib page that does not inflate: {e}")),
            }
        }
        COMPRESSED_LZO => lzokay::decompress::decompress(stored, page)
            .map_err(|e| format!("an lzo page that does not decompress: {e:?}"))?,
        COMPRESSED_SNAPPY => {
            let n = snap::raw::decompress_len(stored)
                .map_err(|e| format!("a snappy page that does not decompress: {e}"))?;
            if n != want {
                return Err(format!("a snappy page of {n} bytes, not {want}"));
            }
            snap::raw::Decoder::new()
                .decompress(stored, page)
                .map_err(|e| format!("a snappy page that does not decompress: {e}"))?
        }
        COMPRESSED_ZSTD => zstd::bulk::decompress_to_buffer(stored, page)
            .map_err(|e| format!("a zstd page that does not decompress: {e}"))?,
        f => return Err(format!("compression flags {f:#x} name no known compressor")),
    };
    if got != want {
        return Err(format!(
            "a page that decompresses to {got} bytes, not {want}"
        ));
    }
    Ok(())
}

/// The largest stored size accepted: a compressed page is kept only when smaller than a
/// page, an uncompressed one is exactly a page.
pub const MAX_STORED: u64 = BLOCK_SIZE;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn page() -> Vec<u8> {
        (0..4096u32).map(|i| (i % 7 + i / 512) as u8).collect()
    }

    #[test]
    fn each_compressor_gives_the_page_back() {
        let want = page();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&want).unwrap();
        let zlib = z.finish().unwrap();
        let snappy = snap::raw::Encoder::new().compress_vec(&want).unwrap();
        let zst = zstd::bulk::compress(&want, 1).unwrap();
        let lzo = lzokay::compress::compress(&want).unwrap();
        for (flags, stored) in [
            (0, want.clone()),
            (COMPRESSED_ZLIB, zlib),
            (COMPRESSED_LZO, lzo),
            (COMPRESSED_SNAPPY, snappy),
            (COMPRESSED_ZSTD, zst),
        ] {
            let mut out = vec![0u8; 4096];
            decompress(flags, &stored, &mut out).unwrap();
            assert_eq!(out, want, "flags {flags:#x}");
        }
    }

    #[test]
    fn bombs_short_pages_and_garbage_are_errors() {
        let mut out = vec![0u8; 4096];
        // Two pages of zeros, compressed: more than a page comes out.
        let big = vec![0u8; 8192];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&big).unwrap();
        assert!(decompress(COMPRESSED_ZLIB, &z.finish().unwrap(), &mut out).is_err());
        let zst = zstd::bulk::compress(&big, 1).unwrap();
        assert!(decompress(COMPRESSED_ZSTD, &zst, &mut out).is_err());
        let sn = snap::raw::Encoder::new().compress_vec(&big).unwrap();
        assert!(decompress(
            COMPRESSED_LZO,
            &lzokay::compress::compress(&big).unwrap(),
            &mut out
        )
        .is_err());
        assert!(decompress(COMPRESSED_SNAPPY, &sn, &mut out).is_err());
        // Half a page.
        let half = zstd::bulk::compress(&big[..2048], 1).unwrap();
        assert!(decompress(COMPRESSED_ZSTD, &half, &mut out).is_err());
        assert!(decompress(0, &big[..100], &mut out).is_err());
        for flags in [
            COMPRESSED_ZLIB,
            COMPRESSED_LZO,
            COMPRESSED_SNAPPY,
            COMPRESSED_ZSTD,
            0x40,
        ] {
            assert!(decompress(flags, b"garbage garbage", &mut out).is_err());
        }
    }
}
