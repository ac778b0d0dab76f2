// PNG plot tests: the encoder's bytes (signature, IHDR fields, per-chunk CRC-32 checked against an
// independent CRC, IDAT inflating to the filtered scanlines), the bitmap font, tick labels and
// axis ranges, and pixels of a rendered plot (background, axes, each series' line, gaps).
#include "report/png_plot.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "mt/core/error.h"
#include "mt/io/checkpoint_crc32.h"

namespace mt {
namespace {

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return static_cast<uint32_t>(b[at]) << 24 | static_cast<uint32_t>(b[at + 1]) << 16 |
         static_cast<uint32_t>(b[at + 2]) << 8 | b[at + 3];
}

struct Chunk {
  std::string type;
  std::vector<uint8_t> data;
};

// Splits a PNG after its signature into chunks, checking each CRC-32 over type + data.
std::vector<Chunk> read_chunks(const std::vector<uint8_t>& png) {
  std::vector<Chunk> chunks;
  size_t at = 8;
  while (at < png.size()) {
    EXPECT_LE(at + 12, png.size());
    uint32_t len = be32(png, at);
    Chunk c;
    c.type.assign(png.begin() + at + 4, png.begin() + at + 8);
    c.data.assign(png.begin() + at + 8, png.begin() + at + 8 + len);
    EXPECT_EQ(be32(png, at + 8 + len), checkpoint_crc32(png.data() + at + 4, 4 + len)) << "CRC of " << c.type;
    chunks.push_back(std::move(c));
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size());
  return chunks;
}

TEST(Png, EncodesSignatureHeaderCrcsAndScanlines) {
  Image img(3, 2, Rgb{10, 20, 30});
  img.set(0, 0, Rgb{255, 0, 0});
  img.set(2, 1, Rgb{0, 0, 255});
  std::vector<uint8_t> png = encode_png(img);
  const std::vector<uint8_t> signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  ASSERT_GE(png.size(), 8u);
  EXPECT_EQ(std::vector<uint8_t>(png.begin(), png.begin() + 8), signature);

  std::vector<Chunk> chunks = read_chunks(png);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].type, "IHDR");
  EXPECT_EQ(chunks[1].type, "IDAT");
  EXPECT_EQ(chunks[2].type, "IEND");
  EXPECT_TRUE(chunks[2].data.empty());

  const std::vector<uint8_t>& ihdr = chunks[0].data;
  ASSERT_EQ(ihdr.size(), 13u);
  EXPECT_EQ(be32(ihdr, 0), 3u);  // width
  EXPECT_EQ(be32(ihdr, 4), 2u);  // height
  EXPECT_EQ(ihdr[8], 8);         // bit depth
  EXPECT_EQ(ihdr[9], 2);         // color type: RGB
  EXPECT_EQ(ihdr[10], 0);        // compression: deflate
  EXPECT_EQ(ihdr[11], 0);        // filter method
  EXPECT_EQ(ihdr[12], 0);        // no interlace

  std::vector<uint8_t> raw(64);
  uLongf raw_size = raw.size();
  ASSERT_EQ(uncompress(raw.data(), &raw_size, chunks[1].data.data(), static_cast<uLong>(chunks[1].data.size())), Z_OK);
  raw.resize(raw_size);
  const std::vector<uint8_t> scanlines = {0, 255, 0, 0, 10, 20, 30, 10, 20, 30,  // filter None, row 0
                                          0, 10, 20, 30, 10, 20, 30, 0, 0, 255};  // filter None, row 1
  EXPECT_EQ(raw, scanlines);
}

TEST(Png, WritesTheEncodedBytesAndNamesAnUnwritablePath) {
  std::string dir = (std::filesystem::temp_directory_path() / "mt_png_test_XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  Image img(4, 4, Rgb{1, 2, 3});
  const std::string path = dir + "/a.png";
  write_png(img, path);
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes, encode_png(img));
  std::filesystem::remove_all(dir);
  try {
    write_png(img, dir + "/missing/b.png");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write " + dir + "/missing/b.png"), std::string::npos) << e.what();
  }
}

TEST(Image, ChecksPixelAccess) {
  Image img(2, 2, Rgb{7, 8, 9});
  EXPECT_EQ(img.at(1, 1), (Rgb{7, 8, 9}));
  img.set(5, 5, Rgb{0, 0, 0});  // outside: clipped, no effect
  EXPECT_THROW(img.at(2, 0), Error);
  EXPECT_THROW(Image(0, 3, Rgb{}), Error);
}

TEST(Font, DrawsGlyphColumns) {
  // 'I' is columns {0x00, 0x41, 0x7F, 0x41, 0x00}: a full middle column, serifs at rows 0 and 6.
  const Rgb ink{0, 0, 0}, paper{255, 255, 255};
  Image img(20, 20, paper);
  draw_text(img, 0, 0, "I", ink);
  EXPECT_EQ(img.at(2, 3), ink);
  EXPECT_EQ(img.at(1, 0), ink);
  EXPECT_EQ(img.at(1, 6), ink);
  EXPECT_EQ(img.at(1, 3), paper);
  EXPECT_EQ(img.at(0, 3), paper);
  Image big(20, 20, paper);
  draw_text(big, 0, 0, "I", ink, 2);
  EXPECT_EQ(big.at(5, 13), ink);   // column 2, row 6 at scale 2
  EXPECT_EQ(big.at(3, 6), paper);  // column 1, row 3
  Image up(20, 20, paper);
  draw_text_up(up, 0, 10, "I", ink);  // column u, row v -> (v, 10 - u)
  EXPECT_EQ(up.at(3, 8), ink);
  EXPECT_EQ(up.at(0, 9), ink);
  EXPECT_EQ(up.at(3, 9), paper);
  EXPECT_EQ(text_width("abc"), 17);
  EXPECT_EQ(text_width("abc", 2), 34);
  EXPECT_EQ(text_width(""), 0);
}

TEST(PlotTicks, FormatsLabels) {
  EXPECT_EQ(format_tick(2500000, 500000), "2.5M");
  EXPECT_EQ(format_tick(2000000, 500000), "2M");
  EXPECT_EQ(format_tick(200000, 200000), "200k");
  EXPECT_EQ(format_tick(1500, 500), "1.5k");
  EXPECT_EQ(format_tick(500, 500), "500");
  EXPECT_EQ(format_tick(0, 200000), "0");
  EXPECT_EQ(format_tick(5.4, 0.2), "5.4");
  EXPECT_EQ(format_tick(5.0, 0.2), "5.0");
  EXPECT_EQ(format_tick(0.05, 0.05), "0.05");
  EXPECT_EQ(format_tick(-0.5, 0.5), "-0.5");
  EXPECT_EQ(format_tick(3e9, 1e9), "3G");
  EXPECT_EQ(format_tick(1e-17, 0.1), "0.0");
}

std::vector<PlotSeries> two_lines() {
  return {{"rising", {0, 10}, {0, 1}}, {"falling", {0, 10}, {1, 0}}};
}

TEST(Plot, FrameCoversTheDataWithNiceTicks) {
  PlotFrame f = plot_frame(two_lines(), {"t", "x", "y"});
  EXPECT_DOUBLE_EQ(f.x_min, 0);
  EXPECT_DOUBLE_EQ(f.x_max, 10);
  EXPECT_DOUBLE_EQ(f.x_step, 2);
  EXPECT_DOUBLE_EQ(f.y_min, 0);
  EXPECT_DOUBLE_EQ(f.y_max, 1);
  EXPECT_DOUBLE_EQ(f.y_step, 0.2);
  EXPECT_EQ(f.px(0), f.left + kPlotInset);
  EXPECT_EQ(f.px(10), f.right - kPlotInset);
  EXPECT_EQ(f.py(0), f.bottom - kPlotInset);
  EXPECT_EQ(f.py(1), f.top + kPlotInset);

  PlotFrame g = plot_frame({{"tokens", {204800, 819200}, {6.4, 4.3}}}, {});
  EXPECT_DOUBLE_EQ(g.x_step, 200000);
  EXPECT_DOUBLE_EQ(g.x_min, 200000);
  EXPECT_DOUBLE_EQ(g.x_max, 1000000);
  EXPECT_DOUBLE_EQ(g.y_step, 0.5);
  EXPECT_DOUBLE_EQ(g.y_min, 4.0);
  EXPECT_DOUBLE_EQ(g.y_max, 6.5);

  PlotFrame flat = plot_frame({{"one point", {3}, {2}}}, {});
  EXPECT_LT(flat.x_min, 3);
  EXPECT_GT(flat.x_max, 3);
  EXPECT_LT(flat.y_min, 2);
  EXPECT_GT(flat.y_max, 2);

  EXPECT_THROW(plot_frame({{"bad", {1, 2}, {1}}}, {}), Error);
}

// Whether `c` is within a pixel of (x, y).
bool near(const Image& img, int x, int y, Rgb c) {
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx)
      if (img.at(x + dx, y + dy) == c) return true;
  return false;
}

TEST(Plot, DrawsBackgroundAxesAndEachSeries) {
  const PlotSpec spec{"Validation loss", "tokens", "val loss"};
  const std::vector<PlotSeries> series = two_lines();
  Image img = render_line_plot(series, spec);
  PlotFrame f = plot_frame(series, spec);
  ASSERT_EQ(img.width(), spec.width);
  ASSERT_EQ(img.height(), spec.height);
  EXPECT_NE(series_color(0), series_color(1));

  EXPECT_EQ(img.at(1, 1), kPlotBackground);
  EXPECT_EQ(img.at(f.left, (f.top + f.bottom) / 2), kPlotAxis);   // y axis
  EXPECT_EQ(img.at((f.left + f.right) / 2, f.bottom), kPlotAxis);  // x axis
  EXPECT_EQ(img.at(f.left - 2, f.py(0.4)), kPlotAxis);             // a y tick mark
  EXPECT_TRUE(near(img, f.px(7.5), f.py(0.75), series_color(0)));  // along "rising"
  EXPECT_TRUE(near(img, f.px(2.5), f.py(0.75), series_color(1)));  // along "falling"
  EXPECT_FALSE(near(img, f.px(7.5), f.py(0.75), series_color(1)));
  EXPECT_EQ(img.at(f.px(5), f.py(0.9)), kPlotBackground);  // off both lines and the grid

  bool title_ink = false;  // the title sits above the plot area
  for (int y = 0; y < f.top; ++y)
    for (int x = f.left; x <= f.right; ++x) title_ink = title_ink || img.at(x, y) == kPlotAxis;
  EXPECT_TRUE(title_ink);
}

TEST(Plot, NonFiniteValueBreaksTheLine) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<PlotSeries> gap = {{"gap", {0, 5, 10}, {0, nan, 1}}};
  const std::vector<PlotSeries> whole = {{"whole", {0, 10}, {0, 1}}};
  const PlotSpec spec{"", "", ""};
  PlotFrame f = plot_frame(gap, spec);
  EXPECT_FALSE(near(render_line_plot(gap, spec), f.px(3), f.py(0.3), series_color(0)));
  EXPECT_TRUE(near(render_line_plot(whole, spec), f.px(3), f.py(0.3), series_color(0)));
}

// A band 0.25..0.75 around a flat line at 0.5, over x 0, 5, 10; lone markers fix the frame to
// x 0..10, y 0..1 (ticks every 2 and 0.2).
std::vector<PlotSeries> banded(double middle_lo = 0.25) {
  return {{"band", {0, 5, 10}, {0.5, 0.5, 0.5}, {0.25, middle_lo, 0.25}, {0.75, 0.75, 0.75}},
          {"low corner", {0}, {0}},
          {"high corner", {10}, {1}}};
}

TEST(Plot, BandIsShadedOnceBeneathTheLine) {
  const PlotSpec spec{"", "", ""};
  const Image img = render_line_plot(banded(), spec);
  const PlotFrame f = plot_frame(banded(), spec);
  EXPECT_DOUBLE_EQ(f.y_min, 0);
  EXPECT_DOUBLE_EQ(f.y_max, 1);
  const Rgb tint = blend(kPlotBackground, series_color(0), kBandOpacity);
  EXPECT_EQ(tint, (Rgb{199, 221, 236}));  // 255 + (31 - 255) / 4, 255 + (119 - 255) / 4, 255 + (180 - 255) / 4
  EXPECT_EQ(img.at(f.px(3), f.py(0.65)), tint);
  EXPECT_EQ(img.at(f.px(5), f.py(0.65)), tint);  // where two segments meet: blended once
  EXPECT_EQ(img.at(f.px(7), f.py(0.3)), tint);   // below the line too
  EXPECT_EQ(img.at(f.px(3), f.py(0.9)), kPlotBackground);  // above the band
  EXPECT_EQ(img.at(f.px(3), f.py(0.1)), kPlotBackground);  // below it
  EXPECT_EQ(img.at(f.px(4), f.py(0.65)), blend(Rgb{228, 228, 228}, series_color(0), kBandOpacity));  // over a grid line
  EXPECT_TRUE(near(img, f.px(3), f.py(0.5), series_color(0)));  // the line is drawn over its band

  // A non-finite bound breaks the band around that point; the line goes on.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Image gap = render_line_plot(banded(nan), spec);
  EXPECT_EQ(gap.at(f.px(3), f.py(0.65)), kPlotBackground);
  EXPECT_TRUE(near(gap, f.px(3), f.py(0.5), series_color(0)));
}

TEST(Plot, FrameCoversTheBand) {
  const PlotFrame f = plot_frame({{"s", {0, 1}, {2, 2}, {1.5, -1}, {2.5, 3}}}, {});
  EXPECT_LE(f.y_min, -1);
  EXPECT_GE(f.y_max, 3);
  EXPECT_THROW(plot_frame({{"s", {0, 1}, {2, 2}, {1.5}, {2.5}}}, {}), Error);
  EXPECT_THROW(plot_frame({{"s", {0, 1}, {2, 2}, {1.5, 1}, {}}}, {}), Error);
}

}  // namespace
}  // namespace mt
