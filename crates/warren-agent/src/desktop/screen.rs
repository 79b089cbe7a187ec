//! Screenshots: one frame of the display (or a region of it) grabbed by
//! ffmpeg's x11grab and encoded as PNG or JPEG, optionally scaled down and
//! with the pointer drawn.

use warren_api::desktop::{ImageFormat, RegionQuery, ScreenshotQuery};

use super::tool::Tool;
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
        let mut argv: Vec<String> = [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "x11grab",
            "-draw_mouse",
            if shot.cursor { "1" } else { "0" },
            "-video_size",
        ]
        .map(String::from)
        .to_vec();
        argv.push(format!("{}x{}", shot.width, shot.height));
        argv.push("-i".into());
        argv.push(format!("{}+{},{}", screen.display, shot.x, shot.y));
        argv.extend(["-frames:v", "1"].map(String::from));
        if scale < 1.0 {
            let dim = |v: u32| ((v as f64 * scale).round() as u32).max(1);
            argv.push("-vf".into());
            argv.push(format!(
                "scale={}:{}:flags=bilinear",
                dim(shot.width),
                dim(shot.height)
            ));
        }
        let content_type = match shot.format {
            ImageFormat::Png => {
                argv.extend(["-c:v", "png", "-compression_level", "1"].map(String::from));
                "image/png"
            }
            ImageFormat::Jpeg => {
                // ffmpeg's JPEG scale: 2 (best) to 31 (worst).
                let q = 2 + (100 - quality) * 29 / 99;
                argv.extend(["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v"].map(String::from));
                argv.push(q.to_string());
                "image/jpeg"
            }
        };
        argv.extend(["-f", "image2pipe", "-"].map(String::from));
        let mut tool = Tool::new(&screen.display, argv);
        tool.max_stdout = MAX_IMAGE_BYTES;
        let bytes = tool.run(self.processes()).await?.stdout;
        Ok(Image {
            content_type,
            bytes,
        })
    }
}
