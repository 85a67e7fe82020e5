//! A tiny RGB canvas for `netwarden plot`: rectangles, lines and a built-in 5x7 bitmap font,
//! encoded as PNG. Hand-written so the CLI needs no font files, fontconfig or freetype (a
//! router image has none) and no plotting crate to compile.

use std::io::Write;

pub type Rgb = [u8; 3];

#[derive(Debug, Clone)]
pub struct Canvas {
    pub w: usize,
    pub h: usize,
    px: Vec<u8>,
}

impl Canvas {
    pub fn new(w: usize, h: usize, bg: Rgb) -> Canvas {
        let mut px = Vec::with_capacity(w * h * 3);
        for _ in 0..w * h {
            px.extend_from_slice(&bg);
        }
        Canvas { w, h, px }
    }

    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.w + x) * 3;
        [self.px[i], self.px[i + 1], self.px[i + 2]]
    }

    /// Blends `c` over the pixel with opacity `a` (0..=1).
    pub fn put(&mut self, x: i64, y: i64, c: Rgb, a: f32) {
        if x < 0 || y < 0 || x >= self.w as i64 || y >= self.h as i64 {
            return;
        }
        let i = (y as usize * self.w + x as usize) * 3;
        for (p, &want) in self.px[i..i + 3].iter_mut().zip(&c) {
            let old = f32::from(*p);
            *p = (old + (f32::from(want) - old) * a).round() as u8;
        }
    }

    pub fn rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb, a: f32) {
        let (xa, xb) = (x0.min(x1).round() as i64, x0.max(x1).round() as i64);
        let (ya, yb) = (y0.min(y1).round() as i64, y0.max(y1).round() as i64);
        for y in ya..yb.max(ya + 1) {
            for x in xa..xb.max(xa + 1) {
                self.put(x, y, c, a);
            }
        }
    }

    /// A line `width` pixels wide (a square pen stepped along the segment).
    pub fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb, width: f64) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()) * 2.0).ceil().max(1.0) as usize;
        let r = (width / 2.0).max(0.5);
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            self.rect(x - r, y - r, x + r, y + r, c, 1.0);
        }
    }

    pub fn dashed_hline(&mut self, x0: f64, x1: f64, y: f64, c: Rgb) {
        let mut x = x0;
        while x < x1 {
            self.line(x, y, (x + 10.0).min(x1), y, c, 2.0);
            x += 16.0;
        }
    }

    pub fn dashed_vline(&mut self, x: f64, y0: f64, y1: f64, c: Rgb) {
        let mut y = y0;
        while y < y1 {
            self.line(x, y, x, (y + 10.0).min(y1), c, 2.0);
            y += 16.0;
        }
    }

    /// Text in the built-in font at `scale` (1 = 5x7 pixels per glyph); `anchor` 0 left,
    /// 1 centre, 2 right. Returns the width drawn.
    pub fn text(&mut self, x: f64, y: f64, s: &str, c: Rgb, scale: usize, anchor: u8) -> f64 {
        let adv = (GLYPH_W + 1) * scale;
        let width = (s.chars().count() * adv) as f64;
        let mut cx = match anchor {
            1 => x - width / 2.0,
            2 => x - width,
            _ => x,
        }
        .round() as i64;
        let cy = y.round() as i64;
        for ch in s.chars() {
            let rows = glyph(ch);
            for (ry, bits) in rows.iter().enumerate() {
                for rx in 0..GLYPH_W {
                    if bits & (1 << (GLYPH_W - 1 - rx)) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.put(
                                    cx + (rx * scale + dx) as i64,
                                    cy + (ry * scale + dy) as i64,
                                    c,
                                    1.0,
                                );
                            }
                        }
                    }
                }
            }
            cx += adv as i64;
        }
        width
    }

    /// Encodes as an 8-bit RGB PNG.
    pub fn write_png(&self, out: impl Write) -> Result<(), png::EncodingError> {
        let mut enc = png::Encoder::new(out, self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.px)?;
        w.finish()
    }
}

pub const GLYPH_W: usize = 5;
pub const GLYPH_H: usize = 7;

/// 5x7 glyphs, one byte per row, high bit left. Lower case is drawn as upper case.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        ' ' => [0; 7],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawing_changes_pixels_and_png_round_trips() {
        let mut c = Canvas::new(40, 20, [255, 255, 255]);
        c.line(0.0, 10.0, 39.0, 10.0, [0, 0, 255], 2.0);
        c.text(2.0, 2.0, "A1", [0, 0, 0], 1, 0);
        assert_eq!(c.pixel(20, 10), [0, 0, 255]);
        assert_eq!(c.pixel(4, 2), [0, 0, 0], "top of the A");
        let mut bytes = Vec::new();
        c.write_png(&mut bytes).expect("png");
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut r = dec.read_info().expect("header");
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (40, 20));
        assert_eq!(
            &buf[(10 * 40 + 20) * 3..(10 * 40 + 20) * 3 + 3],
            &[0, 0, 255]
        );
    }
}
