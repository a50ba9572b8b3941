//! qemu's flattened kdump stream as `capture --dump-format kdump` reads it from the pipe:
//! records in any order and of any claimed size, descriptors naming any data.

use coroner_formats::kdump::KdumpStream;
use coroner_formats::{ContainerWriter, WriteOptions};

/// Feeds `data` to a [`KdumpStream`] in two pieces (split where its first byte says), then
/// ends it. Returns whether the stream converted completely; the container goes to a
/// scratch file of this process and is removed.
pub fn kdump_stream(data: &[u8]) {
    let _ = convert(data);
}

/// [`kdump_stream`], saying whether the whole stream converted.
pub fn convert(data: &[u8]) -> bool {
    let path = std::env::temp_dir().join(format!(
        "coroner-fuzz-kdump-stream-{}.core.zst",
        std::process::id()
    ));
    let opts = WriteOptions {
        threads: 1,
        ..WriteOptions::default()
    };
    let Ok(writer) = ContainerWriter::create(&path, opts) else {
        return false;
    };
    let mut stream = KdumpStream::new(writer);
    let cut = data
        .first()
        .map_or(0, |&b| usize::from(b) * 97)
        .min(data.len());
    if stream.feed(&data[..cut]).is_err() || stream.feed(&data[cut..]).is_err() {
        return false;
    }
    let converted = match stream.finish() {
        Ok(done) => done
            .writer
            .finish(coroner_formats::Metadata::new("fuzz"))
            .is_ok(),
        Err(_) => false,
    };
    let _ = std::fs::remove_file(&path);
    converted
}
