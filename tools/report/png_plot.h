// Line plots as PNG files, with no plotting library: an RGB image, a PNG encoder (zlib-deflated
// IDAT, CRC-32 per chunk), a built-in 5x7 bitmap font, and a renderer that draws axes with
// numeric tick labels, a title, axis labels, one colored polyline per series (with an optional
// shaded band around it) and a legend.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mt {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// 8-bit RGB pixels, rows top to bottom.
class Image {
 public:
  Image(int width, int height, Rgb fill);
  int width() const { return width_; }
  int height() const { return height_; }
  Rgb at(int x, int y) const;             // throws mt::Error outside the image
  void set(int x, int y, Rgb c);          // ignores pixels outside the image (drawing clips)
  const std::vector<uint8_t>& rgb() const { return rgb_; }  // width * height * 3 bytes

 private:
  int width_, height_;
  std::vector<uint8_t> rgb_;
};

// The PNG file bytes: signature, IHDR (8-bit RGB, no interlace), one IDAT holding the zlib
// stream of the scanlines (each led by filter type 0, None), IEND.
std::vector<uint8_t> encode_png(const Image& image);
// encode_png to `path`; throws mt::Error naming the path when it cannot be written.
void write_png(const Image& image, const std::string& path);

// Text in the built-in 5x7 font (ASCII 32..126; other bytes draw as '?'), each font pixel drawn
// as a scale x scale block; a glyph advances 6 * scale pixels. (x, y) is the top-left corner.
void draw_text(Image& image, int x, int y, const std::string& text, Rgb color, int scale = 1);
// The same rotated a quarter turn counter-clockwise (reading bottom to top); (x, y) is the
// bottom-left corner of the first glyph.
void draw_text_up(Image& image, int x, int y, const std::string& text, Rgb color, int scale = 1);
int text_width(const std::string& text, int scale = 1);

struct PlotSeries {
  std::string name;  // legend entry
  std::vector<double> x, y;  // same length; a non-finite y breaks the line
  // A band shaded around the line (a spread over seeds, say): empty, or the same length as x; a
  // non-finite bound breaks it as a non-finite y breaks the line.
  std::vector<double> y_lo = {}, y_hi = {};
};

struct PlotSpec {
  std::string title, x_label, y_label;
  int width = 900, height = 560;
};

// Where data lands in the image: the plot area's pixel box (its frame lines included) and the
// axis ranges (nice tick values covering every finite point), shared by the renderer and by
// anyone checking its output. The ranges map kPlotInset pixels inside the frame so that points
// at the ends of a range are not hidden under it.
constexpr int kPlotInset = 6;
struct PlotFrame {
  int left = 0, top = 0, right = 0, bottom = 0;  // plot area, inclusive pixel bounds
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  double x_step = 1, y_step = 1;  // tick spacing
  int px(double x) const;         // data -> pixel column
  int py(double y) const;         // data -> pixel row
};

PlotFrame plot_frame(const std::vector<PlotSeries>& series, const PlotSpec& spec);

// Colors of the plot parts; series i is drawn in series_color(i) (a 10-color cycle), its band
// blended over what lies beneath: kBandOpacity of the series color.
constexpr Rgb kPlotBackground{255, 255, 255};
constexpr Rgb kPlotAxis{40, 40, 40};
constexpr double kBandOpacity = 0.25;
Rgb series_color(size_t i);
Rgb blend(Rgb under, Rgb over, double opacity);  // each channel rounded to the nearest integer

// A tick label: `value` with as many decimals as `step` needs; from 1000 up with a k/M/G suffix
// and no trailing zeros (2500000 with step 500000 -> "2.5M", 2000000 -> "2M", 0.4 with step 0.2 -> "0.4").
std::string format_tick(double value, double step);

Image render_line_plot(const std::vector<PlotSeries>& series, const PlotSpec& spec);

}  // namespace mt
