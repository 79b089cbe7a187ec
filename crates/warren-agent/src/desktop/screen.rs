//! Screenshots: one frame of the display (or a region of it) grabbed
//! in-process over the X protocol (GetImage on the root window, the XFixes
//! cursor image drawn on it when asked) and encoded as PNG or JPEG in Rust,
//! optionally scaled down (bilinear).

use warren_api::desktop::{ImageFormat, RegionQuery, ScreenshotQuery};
use x11rb::connection::Connection;
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

use super::{Desktop, Screen};
use crate::AgentError;

/// JPEG quality when none is given.
const DEFAULT_QUALITY: u32 = 80;
/// Most bytes of one encoded screenshot.
const MAX_IMAGE_BYTES: usize = 128 << 20;

/// An encoded image.
pub struct Image {
    /// Its media type (`image/png`, `image/jpeg`).
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What to grab and how to encode it.
struct Shot {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    format: ImageFormat,
    quality: Option<u32>,
    scale: Option<f64>,
    cursor: bool,
}

impl Desktop {
    /// The whole screen.
    pub async fn screenshot(&self, q: ScreenshotQuery) -> Result<Image, AgentError> {
        let screen = self.screen().await?;
        let shot = Shot {
            x: 0,
            y: 0,
            width: screen.width,
            height: screen.height,
            format: q.format,
            quality: q.quality,
            scale: q.scale,
            cursor: q.cursor.unwrap_or(false),
        };
        self.grab(&screen, shot).await
    }

    /// A rectangle of the screen, which must lie on it.
    pub async fn screenshot_region(&self, q: RegionQuery) -> Result<Image, AgentError> {
        let screen = self.screen().await?;
        screen.check_point("x", q.x, "y", q.y)?;
        if q.width == 0 || q.height == 0 {
            return Err(AgentError::InvalidRequest(
                "width and height must be at least 1".into(),
            ));
        }
        if q.x as u64 + q.width as u64 > screen.width as u64
            || q.y as u64 + q.height as u64 > screen.height as u64
        {
            return Err(AgentError::InvalidRequest(format!(
                "the region must lie on the {}x{} screen: x + width and y + height at most its size",
                screen.width, screen.height
            )));
        }
        let shot = Shot {
            x: q.x,
            y: q.y,
            width: q.width,
            height: q.height,
            format: q.format,
            quality: q.quality,
            scale: q.scale,
            cursor: q.cursor.unwrap_or(false),
        };
        self.grab(&screen, shot).await
    }

    async fn grab(&self, screen: &Screen, shot: Shot) -> Result<Image, AgentError> {
        let scale = shot.scale.unwrap_or(1.0);
        if !(scale > 0.0 && scale <= 1.0) {
            return Err(AgentError::InvalidRequest(
                "scale must be above 0 and at most 1".into(),
            ));
        }
        let quality = shot.quality.unwrap_or(DEFAULT_QUALITY);
        if !(1..=100).contains(&quality) {
            return Err(AgentError::InvalidRequest(
                "quality must be between 1 and 100".into(),
            ));
        }
        let display = screen.display.clone();
        tokio::task::spawn_blocking(move || capture(&display, &shot, scale, quality))
            .await
            .map_err(|e| failed(format!("the capture task: {e}")))?
    }
}

/// A capture failure (HTTP 500 `internal`, as when ffmpeg failed).
fn failed(detail: impl std::fmt::Display) -> AgentError {
    AgentError::ToolFailed {
        tool: "x11 capture".into(),
        detail: detail.to_string(),
    }
}

/// Grabs `shot` from the X server at `display` in-process (GetImage on the
/// root window, the XFixes cursor image drawn on it when asked), scales it
/// and encodes it.
fn capture(display: &str, shot: &Shot, scale: f64, quality: u32) -> Result<Image, AgentError> {
    let (conn, screen_num) = x11rb::connect(Some(display)).map_err(failed)?;
    let setup = conn.setup();
    let root = setup
        .roots
        .get(screen_num)
        .ok_or_else(|| failed("no screen"))?
        .root;
    let image = conn
        .get_image(
            xproto::ImageFormat::Z_PIXMAP,
            root,
            shot.x as i16,
            shot.y as i16,
            shot.width as u16,
            shot.height as u16,
            !0,
        )
        .map_err(failed)?
        .reply()
        .map_err(failed)?;
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == image.depth)
        .map(|f| f.bits_per_pixel);
    if bpp != Some(32) || setup.image_byte_order != xproto::ImageOrder::LSB_FIRST {
        return Err(failed(format!(
            "unsupported pixel format: depth {} at {bpp:?} bits per pixel",
            image.depth
        )));
    }
    let (w, h) = (shot.width as usize, shot.height as usize);
    if image.data.len() < w * h * 4 {
        return Err(failed("short image from the X server"));
    }
    // BGRX little-endian to RGB.
    let mut rgb: Vec<u8> = Vec::with_capacity(w * h * 3);
    for px in image.data[..w * h * 4].chunks_exact(4) {
        rgb.extend_from_slice(&[px[2], px[1], px[0]]);
    }
    if shot.cursor {
        conn.xfixes_query_version(4, 0)
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        let c = conn
            .xfixes_get_cursor_image()
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        let left = c.x as i64 - c.xhot as i64 - shot.x as i64;
        let top = c.y as i64 - c.yhot as i64 - shot.y as i64;
        draw_cursor(&mut rgb, w, h, left, top, c.width as usize, &c.cursor_image);
    }
    let (mut w, mut h) = (w, h);
    if scale < 1.0 {
        let dim = |v: usize| ((v as f64 * scale).round() as usize).max(1);
        let (nw, nh) = (dim(w), dim(h));
        rgb = resize(&rgb, w, h, nw, nh);
        (w, h) = (nw, nh);
    }
    let (content_type, bytes) = match shot.format {
        ImageFormat::Png => ("image/png", encode_png(&rgb, w, h)?),
        ImageFormat::Jpeg => ("image/jpeg", encode_jpeg(&rgb, w, h, quality)?),
    };
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(failed(format!(
            "more than {MAX_IMAGE_BYTES} bytes of image"
        )));
    }
    Ok(Image {
        content_type,
        bytes,
    })
}

/// Blends the cursor (premultiplied ARGB, `cw` wide) onto `rgb` with its
/// top left corner at (`left`, `top`), clipped to the image.
fn draw_cursor(rgb: &mut [u8], w: usize, h: usize, left: i64, top: i64, cw: usize, argb: &[u32]) {
    if cw == 0 {
        return;
    }
    for (i, &p) in argb.iter().enumerate() {
        let (x, y) = (left + (i % cw) as i64, top + (i / cw) as i64);
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            continue;
        }
        let a = p >> 24;
        let o = (y as usize * w + x as usize) * 3;
        for (k, shift) in [16u32, 8, 0].into_iter().enumerate() {
            let src = (p >> shift) & 0xff;
            let dst = rgb[o + k] as u32;
            rgb[o + k] = (src + dst * (255 - a) / 255).min(255) as u8;
        }
    }
}

/// Bilinear resize of an RGB image from `w`×`h` to `nw`×`nh`.
fn resize(rgb: &[u8], w: usize, h: usize, nw: usize, nh: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nw * nh * 3);
    let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
    for oy in 0..nh {
        let fy = ((oy as f32 + 0.5) * sy - 0.5).max(0.0);
        let y0 = (fy as usize).min(h - 1);
        let y1 = (y0 + 1).min(h - 1);
        let ty = fy - y0 as f32;
        for ox in 0..nw {
            let fx = ((ox as f32 + 0.5) * sx - 0.5).max(0.0);
            let x0 = (fx as usize).min(w - 1);
            let x1 = (x0 + 1).min(w - 1);
            let tx = fx - x0 as f32;
            for k in 0..3 {
                let p = |x: usize, y: usize| rgb[(y * w + x) * 3 + k] as f32;
                let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
                let bottom = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
                out.push((top * (1.0 - ty) + bottom * ty).round() as u8);
            }
        }
    }
    out
}

/// PNG with fast compression.
fn encode_png(rgb: &[u8], w: usize, h: usize) -> Result<Vec<u8>, AgentError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().map_err(failed)?;
    writer.write_image_data(rgb).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

/// Baseline JPEG at `quality` (1..=100), chroma subsampled 4:2:0 (as
/// ffmpeg's `yuvj420p` was).
fn encode_jpeg(rgb: &[u8], w: usize, h: usize, quality: u32) -> Result<Vec<u8>, AgentError> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality as u8);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    enc.encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(failed)?;
    Ok(out)
}
