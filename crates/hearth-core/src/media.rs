//! What an upload's bytes are, and thumbnails of images.
//!
//! The type of an image is read from its first bytes, never from what the client claimed, so a
//! file served inline as an image really is one. Decoding is bounded: an image whose decoded
//! pixels would take more than [`MAX_DECODE_BYTES`] gets its dimensions but no thumbnail, so
//! a small file claiming a huge canvas (a decompression bomb) cannot exhaust memory. The
//! functions here block; callers run them on the blocking pool.

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, metadata::Orientation};
use std::io::{BufReader, Cursor};
use std::path::Path;

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_MAX_SIDE: u32 = 320;

/// Most bytes a decoded image may take (RGBA 8-bit: about 48 megapixels).
pub const MAX_DECODE_BYTES: u64 = 192 << 20;

/// Bytes [`sniff`] needs from the start of a file.
pub const SNIFF_BYTES: usize = 16;

/// The image formats Hearth recognizes (and browsers display).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl ImageKind {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Gif => "image/gif",
            ImageKind::Webp => "image/webp",
        }
    }

    pub fn from_content_type(content_type: &str) -> Option<ImageKind> {
        Some(match content_type {
            "image/png" => ImageKind::Png,
            "image/jpeg" => ImageKind::Jpeg,
            "image/gif" => ImageKind::Gif,
            "image/webp" => ImageKind::Webp,
            _ => return None,
        })
    }

    fn format(self) -> ImageFormat {
        match self {
            ImageKind::Png => ImageFormat::Png,
            ImageKind::Jpeg => ImageFormat::Jpeg,
            ImageKind::Gif => ImageFormat::Gif,
            ImageKind::Webp => ImageFormat::WebP,
        }
    }
}

/// The image format of a file from its first bytes (magic numbers), if it is one.
pub fn sniff(head: &[u8]) -> Option<ImageKind> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageKind::Png)
    } else if head.starts_with(b"\xFF\xD8\xFF") {
        Some(ImageKind::Jpeg)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(ImageKind::Gif)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(ImageKind::Webp)
    } else {
        None
    }
}

/// An image's size as displayed (after its EXIF orientation) and its thumbnail.
#[derive(Debug, Clone)]
pub struct Probed {
    pub width: u32,
    pub height: u32,
    /// Encoded as [`thumbnail_type`] of the image's kind; `None` if the image was too large to
    /// decode within the bounds, or its pixel data was broken.
    pub thumbnail: Option<Vec<u8>>,
}

/// The content type of thumbnails of images of `kind`: JPEG for JPEG (no transparency to
/// keep), PNG for the rest (they may be transparent).
pub fn thumbnail_type(kind: ImageKind) -> &'static str {
    match kind {
        ImageKind::Jpeg => "image/jpeg",
        _ => "image/png",
    }
}

/// Reads the image at `path`: its dimensions (an error if not even its header is readable)
/// and, within [`MAX_DECODE_BYTES`], a thumbnail no larger than [`THUMBNAIL_MAX_SIDE`].
pub fn probe(path: &Path, kind: ImageKind) -> Result<Probed, image::ImageError> {
    let file = std::fs::File::open(path)?;
    let mut reader = ImageReader::new(BufReader::new(file));
    reader.set_format(kind.format());
    // The default limits bound the decoder's own allocations (512 MiB); the pixel buffer is
    // checked against our tighter bound below, before anything is decoded.
    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (width, height) = if turned {
        (height, width)
    } else {
        (width, height)
    };
    let thumbnail = if decoder.total_bytes() <= MAX_DECODE_BYTES {
        // A corrupt body after a valid header still leaves a usable image record.
        DynamicImage::from_decoder(decoder)
            .ok()
            .and_then(|image| encode_thumbnail(&image, orientation, kind).ok())
    } else {
        None
    };
    Ok(Probed {
        width,
        height,
        thumbnail,
    })
}

fn encode_thumbnail(
    image: &DynamicImage,
    orientation: Orientation,
    kind: ImageKind,
) -> Result<Vec<u8>, image::ImageError> {
    // Resize first, then turn: rotating the small image is cheaper.
    let mut small = image.thumbnail(THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE);
    small.apply_orientation(orientation);
    let mut out = Vec::new();
    match kind {
        ImageKind::Jpeg => {
            let encoder = JpegEncoder::new_with_quality(&mut out, 80);
            DynamicImage::ImageRgb8(small.to_rgb8()).write_with_encoder(encoder)?;
        }
        _ => small.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_magic_not_by_name() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageKind::Png));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0"), Some(ImageKind::Jpeg));
        assert_eq!(sniff(b"GIF89a.."), Some(ImageKind::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn a_huge_canvas_gets_dimensions_but_is_not_decoded() {
        // A valid PNG header claiming 30000 × 30000 pixels (3.6 GB as RGBA), and no pixels.
        let dir = std::env::temp_dir().join(format!("hearth-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bomb.png");
        std::fs::write(&path, png_header(30_000, 30_000)).unwrap();
        let probed = probe(&path, ImageKind::Png).unwrap();
        assert_eq!((probed.width, probed.height), (30_000, 30_000));
        assert!(probed.thumbnail.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The signature, an IHDR chunk (8-bit RGBA), an IDAT chunk holding an empty zlib stream
    /// (far too little data: the decoder would fail if it tried) and IEND, with correct CRCs.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [
            (&b"IHDR"[..], &ihdr[..]),
            (b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]),
            (b"IEND", &[]),
        ] {
            let mut chunk = kind.to_vec();
            chunk.extend_from_slice(data);
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(&chunk);
            out.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
