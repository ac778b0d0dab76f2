// Line plots as PNG: the RGB image, the PNG chunk writer (zlib for IDAT, CRC-32 per chunk), a 5x7
// ASCII bitmap font and the plot renderer (nice ticks, grid, shaded bands, polylines with point
// markers, legend).
#include "report/png_plot.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "mt/core/error.h"

namespace mt {

// ---- image ----

Image::Image(int width, int height, Rgb fill) : width_(width), height_(height) {
  MT_CHECK(width > 0 && height > 0, "image: expected a positive size, got ", width, "x", height);
  rgb_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = fill.r;
    rgb_[i + 1] = fill.g;
    rgb_[i + 2] = fill.b;
  }
}

Rgb Image::at(int x, int y) const {
  MT_CHECK(x >= 0 && x < width_ && y >= 0 && y < height_, "image: pixel (", x, ", ", y, ") outside ", width_, "x",
           height_);
  size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  return {rgb_[i], rgb_[i + 1], rgb_[i + 2]};
}

void Image::set(int x, int y, Rgb c) {
  if (x < 0 || x >= width_ || y < 0 || y >= height_) return;
  size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  rgb_[i] = c.r;
  rgb_[i + 1] = c.g;
  rgb_[i + 2] = c.b;
}

// ---- PNG ----

namespace {

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

// length, type, data, CRC-32 of type + data.
void put_chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  uLong crc = crc32(0L, out.data() + type_at, static_cast<uInt>(4 + data.size()));
  put_u32(out, static_cast<uint32_t>(crc));
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& image) {
  const size_t row_bytes = static_cast<size_t>(image.width()) * 3;
  std::vector<uint8_t> raw;
  raw.reserve((row_bytes + 1) * image.height());
  for (int y = 0; y < image.height(); ++y) {
    raw.push_back(0);  // filter type None
    const uint8_t* row = image.rgb().data() + y * row_bytes;
    raw.insert(raw.end(), row, row + row_bytes);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> packed(packed_size);
  int rc = compress2(packed.data(), &packed_size, raw.data(), static_cast<uLong>(raw.size()), Z_BEST_COMPRESSION);
  MT_CHECK(rc == Z_OK, "png: zlib compress2 failed with code ", rc);
  packed.resize(packed_size);

  std::vector<uint8_t> ihdr;
  put_u32(ihdr, static_cast<uint32_t>(image.width()));
  put_u32(ihdr, static_cast<uint32_t>(image.height()));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // bit depth 8, color type RGB, deflate, filter 0, no interlace

  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", packed);
  put_chunk(png, "IEND", {});
  return png;
}

void write_png(const Image& image, const std::string& path) {
  std::vector<uint8_t> png = encode_png(image);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  MT_CHECK(out.good(), "cannot write ", path, ": ", std::strerror(errno));
  out.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  out.close();
  MT_CHECK(!out.fail(), "error writing ", path);
}

// ---- text ----

namespace {

// 5x7 glyphs for ASCII 32..126: five column bytes each, bit 0 = top row.
constexpr uint8_t kFont[95][5] = {
    {0x00, 0x00, 0x00, 0x00, 0x00},  // ' '
    {0x00, 0x00, 0x5F, 0x00, 0x00},  // !
    {0x00, 0x07, 0x00, 0x07, 0x00},  // "
    {0x14, 0x7F, 0x14, 0x7F, 0x14},  // #
    {0x24, 0x2A, 0x7F, 0x2A, 0x12},  // $
    {0x23, 0x13, 0x08, 0x64, 0x62},  // %
    {0x36, 0x49, 0x55, 0x22, 0x50},  // &
    {0x00, 0x05, 0x03, 0x00, 0x00},  // '
    {0x00, 0x1C, 0x22, 0x41, 0x00},  // (
    {0x00, 0x41, 0x22, 0x1C, 0x00},  // )
    {0x14, 0x08, 0x3E, 0x08, 0x14},  // *
    {0x08, 0x08, 0x3E, 0x08, 0x08},  // +
    {0x00, 0x50, 0x30, 0x00, 0x00},  // ,
    {0x08, 0x08, 0x08, 0x08, 0x08},  // -
    {0x00, 0x60, 0x60, 0x00, 0x00},  // .
    {0x20, 0x10, 0x08, 0x04, 0x02},  // /
    {0x3E, 0x51, 0x49, 0x45, 0x3E},  // 0
    {0x00, 0x42, 0x7F, 0x40, 0x00},  // 1
    {0x42, 0x61, 0x51, 0x49, 0x46},  // 2
    {0x21, 0x41, 0x45, 0x4B, 0x31},  // 3
    {0x18, 0x14, 0x12, 0x7F, 0x10},  // 4
    {0x27, 0x45, 0x45, 0x45, 0x39},  // 5
    {0x3C, 0x4A, 0x49, 0x49, 0x30},  // 6
    {0x01, 0x71, 0x09, 0x05, 0x03},  // 7
    {0x36, 0x49, 0x49, 0x49, 0x36},  // 8
    {0x06, 0x49, 0x49, 0x29, 0x1E},  // 9
    {0x00, 0x36, 0x36, 0x00, 0x00},  // :
    {0x00, 0x56, 0x36, 0x00, 0x00},  // ;
    {0x08, 0x14, 0x22, 0x41, 0x00},  // <
    {0x14, 0x14, 0x14, 0x14, 0x14},  // =
    {0x00, 0x41, 0x22, 0x14, 0x08},  // >
    {0x02, 0x01, 0x51, 0x09, 0x06},  // ?
    {0x32, 0x49, 0x79, 0x41, 0x3E},  // @
    {0x7E, 0x11, 0x11, 0x11, 0x7E},  // A
    {0x7F, 0x49, 0x49, 0x49, 0x36},  // B
    {0x3E, 0x41, 0x41, 0x41, 0x22},  // C
    {0x7F, 0x41, 0x41, 0x22, 0x1C},  // D
    {0x7F, 0x49, 0x49, 0x49, 0x41},  // E
    {0x7F, 0x09, 0x09, 0x09, 0x01},  // F
    {0x3E, 0x41, 0x49, 0x49, 0x7A},  // G
    {0x7F, 0x08, 0x08, 0x08, 0x7F},  // H
    {0x00, 0x41, 0x7F, 0x41, 0x00},  // I
    {0x20, 0x40, 0x41, 0x3F, 0x01},  // J
    {0x7F, 0x08, 0x14, 0x22, 0x41},  // K
    {0x7F, 0x40, 0x40, 0x40, 0x40},  // L
    {0x7F, 0x02, 0x0C, 0x02, 0x7F},  // M
    {0x7F, 0x04, 0x08, 0x10, 0x7F},  // N
    {0x3E, 0x41, 0x41, 0x41, 0x3E},  // O
    {0x7F, 0x09, 0x09, 0x09, 0x06},  // P
    {0x3E, 0x41, 0x51, 0x21, 0x5E},  // Q
    {0x7F, 0x09, 0x19, 0x29, 0x46},  // R
    {0x46, 0x49, 0x49, 0x49, 0x31},  // S
    {0x01, 0x01, 0x7F, 0x01, 0x01},  // T
    {0x3F, 0x40, 0x40, 0x40, 0x3F},  // U
    {0x1F, 0x20, 0x40, 0x20, 0x1F},  // V
    {0x3F, 0x40, 0x38, 0x40, 0x3F},  // W
    {0x63, 0x14, 0x08, 0x14, 0x63},  // X
    {0x07, 0x08, 0x70, 0x08, 0x07},  // Y
    {0x61, 0x51, 0x49, 0x45, 0x43},  // Z
    {0x00, 0x7F, 0x41, 0x41, 0x00},  // [
    {0x02, 0x04, 0x08, 0x10, 0x20},  // backslash
    {0x00, 0x41, 0x41, 0x7F, 0x00},  // ]
    {0x04, 0x02, 0x01, 0x02, 0x04},  // ^
    {0x40, 0x40, 0x40, 0x40, 0x40},  // _
    {0x00, 0x01, 0x02, 0x04, 0x00},  // `
    {0x20, 0x54, 0x54, 0x54, 0x78},  // a
    {0x7F, 0x48, 0x44, 0x44, 0x38},  // b
    {0x38, 0x44, 0x44, 0x44, 0x20},  // c
    {0x38, 0x44, 0x44, 0x48, 0x7F},  // d
    {0x38, 0x54, 0x54, 0x54, 0x18},  // e
    {0x08, 0x7E, 0x09, 0x01, 0x02},  // f
    {0x0C, 0x52, 0x52, 0x52, 0x3E},  // g
    {0x7F, 0x08, 0x04, 0x04, 0x78},  // h
    {0x00, 0x44, 0x7D, 0x40, 0x00},  // i
    {0x20, 0x40, 0x44, 0x3D, 0x00},  // j
    {0x7F, 0x10, 0x28, 0x44, 0x00},  // k
    {0x00, 0x41, 0x7F, 0x40, 0x00},  // l
    {0x7C, 0x04, 0x18, 0x04, 0x78},  // m
    {0x7C, 0x08, 0x04, 0x04, 0x78},  // n
    {0x38, 0x44, 0x44, 0x44, 0x38},  // o
    {0x7C, 0x14, 0x14, 0x14, 0x08},  // p
    {0x08, 0x14, 0x14, 0x18, 0x7C},  // q
    {0x7C, 0x08, 0x04, 0x04, 0x08},  // r
    {0x48, 0x54, 0x54, 0x54, 0x20},  // s
    {0x04, 0x3F, 0x44, 0x40, 0x20},  // t
    {0x3C, 0x40, 0x40, 0x20, 0x7C},  // u
    {0x1C, 0x20, 0x40, 0x20, 0x1C},  // v
    {0x3C, 0x40, 0x30, 0x40, 0x3C},  // w
    {0x44, 0x28, 0x10, 0x28, 0x44},  // x
    {0x0C, 0x50, 0x50, 0x50, 0x3C},  // y
    {0x44, 0x64, 0x54, 0x4C, 0x44},  // z
    {0x00, 0x08, 0x36, 0x41, 0x00},  // {
    {0x00, 0x00, 0x7F, 0x00, 0x00},  // |
    {0x00, 0x41, 0x36, 0x08, 0x00},  // }
    {0x08, 0x04, 0x08, 0x10, 0x08},  // ~
};
constexpr int kGlyphAdvance = 6;  // 5 columns + 1 of spacing
constexpr int kGlyphHeight = 7;

const uint8_t* glyph(char c) {
  auto u = static_cast<unsigned char>(c);
  return kFont[(u >= 32 && u <= 126 ? u : '?') - 32];
}

void fill_rect(Image& image, int x0, int y0, int x1, int y1, Rgb c) {  // inclusive bounds
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) image.set(x, y, c);
}

}  // namespace

int text_width(const std::string& text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * kGlyphAdvance - 1) * scale;
}

void draw_text(Image& image, int x, int y, const std::string& text, Rgb color, int scale) {
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t* g = glyph(text[i]);
    for (int col = 0; col < 5; ++col)
      for (int row = 0; row < kGlyphHeight; ++row)
        if (g[col] >> row & 1) {
          int px = x + (static_cast<int>(i) * kGlyphAdvance + col) * scale, py = y + row * scale;
          fill_rect(image, px, py, px + scale - 1, py + scale - 1, color);
        }
  }
}

void draw_text_up(Image& image, int x, int y, const std::string& text, Rgb color, int scale) {
  // Glyph pixel (u along the text, v down the glyph) lands at (x + v, y - u): glyph tops face left.
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t* g = glyph(text[i]);
    for (int col = 0; col < 5; ++col)
      for (int row = 0; row < kGlyphHeight; ++row)
        if (g[col] >> row & 1) {
          int u = (static_cast<int>(i) * kGlyphAdvance + col) * scale, v = row * scale;
          fill_rect(image, x + v, y - u - scale + 1, x + v + scale - 1, y - u, color);
        }
  }
}

// ---- plot ----

Rgb series_color(size_t i) {
  static constexpr Rgb kPalette[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                       {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                       {188, 189, 34},  {23, 190, 207}};
  return kPalette[i % 10];
}

Rgb blend(Rgb under, Rgb over, double opacity) {
  auto mix = [&](uint8_t u, uint8_t o) { return static_cast<uint8_t>(std::lround(u + (o - u) * opacity)); };
  return {mix(under.r, over.r), mix(under.g, over.g), mix(under.b, over.b)};
}

std::string format_tick(double value, double step) {
  if (std::abs(value) < step * 1e-9) value = 0;  // -0 and rounding noise at zero
  const double mag = std::abs(value);
  const char* suffix = mag >= 1e9 ? "G" : mag >= 1e6 ? "M" : mag >= 1e3 ? "k" : "";
  const double unit = mag >= 1e9 ? 1e9 : mag >= 1e6 ? 1e6 : mag >= 1e3 ? 1e3 : 1;
  int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step / unit) - 1e-9)));
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value / unit);
  std::string s = buf;
  if (*suffix && s.find('.') != std::string::npos) {  // "1.50M" -> "1.5M", "2.00M" -> "2M"
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s + suffix;
}

namespace {

constexpr Rgb kGrid{228, 228, 228};
constexpr int kTargetTicks = 6;

// A 1/2/5 x 10^k spacing giving about kTargetTicks ticks over [lo, hi], and the range widened to
// whole ticks. A flat range is widened first so there is something to space.
void nice_axis(double lo, double hi, double& axis_min, double& axis_max, double& step) {
  if (!(hi > lo)) {
    double pad = lo != 0 ? std::abs(lo) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  double raw = (hi - lo) / kTargetTicks;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  axis_min = std::floor(lo / step + 1e-9) * step;
  axis_max = std::ceil(hi / step - 1e-9) * step;
}

std::vector<double> ticks(double lo, double hi, double step) {
  std::vector<double> t;
  for (int k = 0;; ++k) {
    double v = lo + k * step;
    if (v > hi + step * 1e-6) break;
    t.push_back(v);
  }
  return t;
}

// A line two pixels thick, clipped to the plot area's inside.
void draw_line(Image& image, const PlotFrame& f, int x0, int y0, int x1, int y1, Rgb c) {
  auto plot = [&](int x, int y) {
    for (int dy = 0; dy < 2; ++dy)
      for (int dx = 0; dx < 2; ++dx) {
        int px = x + dx, py = y + dy;
        if (px > f.left && px < f.right && py > f.top && py < f.bottom) image.set(px, py, c);
      }
  };
  int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  while (true) {  // Bresenham
    plot(x0, y0);
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

// A series' band: the area between its lower and upper bounds, linear between points, blended
// over the plot area's inside. A point whose neighbours have no band is a bar as wide as a marker.
void draw_band(Image& image, const PlotFrame& f, const PlotSeries& s, Rgb c) {
  if (s.y_lo.empty()) return;
  auto valid = [&](size_t i) { return std::isfinite(s.x[i]) && std::isfinite(s.y_lo[i]) && std::isfinite(s.y_hi[i]); };
  // Pixels are marked first and blended once, so columns shared by two segments are not darker.
  std::vector<uint8_t> mark(static_cast<size_t>(image.width()) * image.height(), 0);
  auto column = [&](int x, double y0, double y1) {  // y0, y1: pixel rows, either order
    if (x <= f.left || x >= f.right) return;
    const int top = static_cast<int>(std::lround(std::min(y0, y1)));
    const int bottom = static_cast<int>(std::lround(std::max(y0, y1)));
    for (int y = std::max(top, f.top + 1); y <= std::min(bottom, f.bottom - 1); ++y)
      mark[static_cast<size_t>(y) * image.width() + x] = 1;
  };
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!valid(i)) continue;
    const int x0 = f.px(s.x[i]);
    const bool lone = (i == 0 || !valid(i - 1)) && (i + 1 == s.x.size() || !valid(i + 1));
    for (int x = x0 - (lone ? 2 : 0); x <= x0 + (lone ? 2 : 0); ++x) column(x, f.py(s.y_lo[i]), f.py(s.y_hi[i]));
    if (i + 1 == s.x.size() || !valid(i + 1)) continue;
    const int x1 = f.px(s.x[i + 1]);
    for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) {
      const double t = x1 == x0 ? 0.0 : static_cast<double>(x - x0) / (x1 - x0);
      column(x, f.py(s.y_lo[i]) + t * (f.py(s.y_lo[i + 1]) - f.py(s.y_lo[i])),
             f.py(s.y_hi[i]) + t * (f.py(s.y_hi[i + 1]) - f.py(s.y_hi[i])));
    }
  }
  for (int y = 0; y < image.height(); ++y)
    for (int x = 0; x < image.width(); ++x)
      if (mark[static_cast<size_t>(y) * image.width() + x]) image.set(x, y, blend(image.at(x, y), c, kBandOpacity));
}

void draw_marker(Image& image, const PlotFrame& f, int x, int y, Rgb c) {
  for (int py = y - 2; py <= y + 2; ++py)
    for (int px = x - 2; px <= x + 2; ++px)
      if (px > f.left && px < f.right && py > f.top && py < f.bottom) image.set(px, py, c);
}

}  // namespace

int PlotFrame::px(double x) const {
  return left + kPlotInset +
         static_cast<int>(std::lround((x - x_min) / (x_max - x_min) * (right - left - 2 * kPlotInset)));
}

int PlotFrame::py(double y) const {
  return bottom - kPlotInset -
         static_cast<int>(std::lround((y - y_min) / (y_max - y_min) * (bottom - top - 2 * kPlotInset)));
}

PlotFrame plot_frame(const std::vector<PlotSeries>& series, const PlotSpec& spec) {
  double x_lo = HUGE_VAL, x_hi = -HUGE_VAL, y_lo = HUGE_VAL, y_hi = -HUGE_VAL;
  for (const PlotSeries& s : series) {
    MT_CHECK(s.x.size() == s.y.size(), "plot: series '", s.name, "' has ", s.x.size(), " x values and ", s.y.size(),
             " y values");
    MT_CHECK(s.y_lo.size() == s.y_hi.size() && (s.y_lo.empty() || s.y_lo.size() == s.x.size()), "plot: series '",
             s.name, "' has ", s.x.size(), " x values and a band of ", s.y_lo.size(), " lower and ", s.y_hi.size(),
             " upper bounds (expected none or one of each per x)");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i])) continue;
      std::vector<double> ys = {s.y[i]};
      if (!s.y_lo.empty()) ys.insert(ys.end(), {s.y_lo[i], s.y_hi[i]});
      for (double y : ys) {
        if (!std::isfinite(y)) continue;
        x_lo = std::min(x_lo, s.x[i]);
        x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, y);
        y_hi = std::max(y_hi, y);
      }
    }
  }
  if (x_lo > x_hi) x_lo = 0, x_hi = 1;  // nothing finite to show
  if (y_lo > y_hi) y_lo = 0, y_hi = 1;
  PlotFrame f;
  nice_axis(x_lo, x_hi, f.x_min, f.x_max, f.x_step);
  nice_axis(y_lo, y_hi, f.y_min, f.y_max, f.y_step);
  int label_w = 0;
  for (double v : ticks(f.y_min, f.y_max, f.y_step)) label_w = std::max(label_w, text_width(format_tick(v, f.y_step)));
  f.left = 12 + (spec.y_label.empty() ? 0 : kGlyphHeight + 10) + label_w + 8;
  f.top = spec.title.empty() ? 16 : 16 + 2 * kGlyphHeight + 14;
  f.right = spec.width - 24;
  f.bottom = spec.height - (12 + (spec.x_label.empty() ? 0 : kGlyphHeight + 10) + kGlyphHeight + 8);
  MT_CHECK(f.right - f.left >= 40 && f.bottom - f.top >= 40, "plot: ", spec.width, "x", spec.height,
           " leaves no room for the plot area");
  return f;
}

Image render_line_plot(const std::vector<PlotSeries>& series, const PlotSpec& spec) {
  const PlotFrame f = plot_frame(series, spec);
  Image img(spec.width, spec.height, kPlotBackground);
  const std::vector<double> xt = ticks(f.x_min, f.x_max, f.x_step), yt = ticks(f.y_min, f.y_max, f.y_step);

  for (double v : xt) fill_rect(img, f.px(v), f.top, f.px(v), f.bottom, kGrid);
  for (double v : yt) fill_rect(img, f.left, f.py(v), f.right, f.py(v), kGrid);

  for (size_t k = 0; k < series.size(); ++k) draw_band(img, f, series[k], series_color(k));
  for (size_t k = 0; k < series.size(); ++k) {
    const PlotSeries& s = series[k];
    const Rgb c = series_color(k);
    bool have_prev = false;
    int prev_x = 0, prev_y = 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        have_prev = false;  // a gap in the line
        continue;
      }
      int x = f.px(s.x[i]), y = f.py(s.y[i]);
      if (have_prev) draw_line(img, f, prev_x, prev_y, x, y, c);
      draw_marker(img, f, x, y, c);
      prev_x = x, prev_y = y, have_prev = true;
    }
  }

  // Frame, ticks and their labels.
  fill_rect(img, f.left, f.top, f.right, f.top, kPlotAxis);
  fill_rect(img, f.left, f.bottom, f.right, f.bottom, kPlotAxis);
  fill_rect(img, f.left, f.top, f.left, f.bottom, kPlotAxis);
  fill_rect(img, f.right, f.top, f.right, f.bottom, kPlotAxis);
  for (double v : xt) {
    int x = f.px(v);
    fill_rect(img, x, f.bottom + 1, x, f.bottom + 4, kPlotAxis);
    std::string label = format_tick(v, f.x_step);
    draw_text(img, x - text_width(label) / 2, f.bottom + 8, label, kPlotAxis);
  }
  for (double v : yt) {
    int y = f.py(v);
    fill_rect(img, f.left - 4, y, f.left - 1, y, kPlotAxis);
    std::string label = format_tick(v, f.y_step);
    draw_text(img, f.left - 8 - text_width(label), y - kGlyphHeight / 2, label, kPlotAxis);
  }

  // Title, axis labels.
  if (!spec.title.empty()) {
    int scale = text_width(spec.title, 2) <= f.right - f.left ? 2 : 1;  // a long title at half size
    draw_text(img, (f.left + f.right - text_width(spec.title, scale)) / 2, 14, spec.title, kPlotAxis, scale);
  }
  if (!spec.x_label.empty())
    draw_text(img, (f.left + f.right - text_width(spec.x_label)) / 2, spec.height - 12 - kGlyphHeight, spec.x_label,
              kPlotAxis);
  if (!spec.y_label.empty())
    draw_text_up(img, 12, (f.top + f.bottom + text_width(spec.y_label)) / 2, spec.y_label, kPlotAxis);

  // Legend in the top-right corner of the plot area: a line sample and the name per series.
  if (!series.empty()) {
    constexpr int kRow = 14, kSample = 20, kPad = 8;
    int name_w = 0;
    for (const PlotSeries& s : series) name_w = std::max(name_w, text_width(s.name));
    int w = kPad + kSample + 6 + name_w + kPad;
    int h = kPad + kRow * (static_cast<int>(series.size()) - 1) + kGlyphHeight + kPad;
    int x0 = f.right - 10 - w, y0 = f.top + 10;
    fill_rect(img, x0, y0, x0 + w, y0 + h, kPlotBackground);
    fill_rect(img, x0, y0, x0 + w, y0, kPlotAxis);
    fill_rect(img, x0, y0 + h, x0 + w, y0 + h, kPlotAxis);
    fill_rect(img, x0, y0, x0, y0 + h, kPlotAxis);
    fill_rect(img, x0 + w, y0, x0 + w, y0 + h, kPlotAxis);
    for (size_t k = 0; k < series.size(); ++k) {
      int y = y0 + kPad + static_cast<int>(k) * kRow;
      fill_rect(img, x0 + kPad, y + 2, x0 + kPad + kSample, y + 4, series_color(k));
      draw_text(img, x0 + kPad + kSample + 6, y, series[k].name, kPlotAxis);
    }
  }
  return img;
}

}  // namespace mt
