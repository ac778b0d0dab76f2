// CheckpointWriter / CheckpointReader: exact round trips of every dtype and metadata kind, atomic
// commit, and detection of truncated, bit-flipped, incomplete, foreign and tampered files.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>

#include "mt/io/checkpoint.h"
#include "mt/io/checkpoint_crc32.h"
#include "mt/io/checkpoint_format.h"

namespace {
namespace fs = std::filesystem;
using mt::DType;

// A fresh directory under /tmp, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mt_ckpt_test_XXXXXX").string();
    MT_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// The message of the mt::Error that `fn` throws; fails the test if it throws nothing.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const mt::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an mt::Error";
  return "";
}

// Random bytes valid for `dtype` (bool: 0 or 1; other types: any bit pattern, NaN payloads included).
std::vector<unsigned char> random_bytes(DType dtype, int64_t numel, std::mt19937& rng) {
  std::vector<unsigned char> b(static_cast<size_t>(numel) * mt::dtype_size(dtype));
  for (auto& x : b) x = static_cast<unsigned char>(dtype == DType::kBool ? rng() & 1u : rng());
  return b;
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const std::vector<DType> kAllDTypes = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16,
                                       DType::kI32, DType::kI64, DType::kBool};

// A small committed checkpoint: two tensors and some metadata.
void write_small(const fs::path& p, float first = 1.0f) {
  mt::CheckpointWriter w(p);
  std::vector<float> w0(64);
  for (size_t i = 0; i < w0.size(); ++i) w0[i] = first + static_cast<float>(i);
  w.write("blocks.0.attn.w_qkv", DType::kF32, {8, 8}, w0.data());
  std::vector<int64_t> pos = {3, 1, 4};
  w.write("loader.position", DType::kI64, {3}, pos.data());
  w.write_int("step", 1200);
  w.write_string("recipe", "model:\n  layers: 2\n");
  w.commit();
}

std::vector<float> read_w0(const mt::CheckpointReader& r) {
  std::vector<float> out(64);
  r.read("blocks.0.attn.w_qkv", DType::kF32, {8, 8}, out.data());
  return out;
}

// File offset of a contiguous dataset's data.
haddr_t dataset_offset(const fs::path& p, const std::string& dataset) {
  hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  haddr_t off = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  EXPECT_NE(off, HADDR_UNDEF) << dataset;
  return off;
}

void flip_byte(const fs::path& p, std::streamoff offset) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(offset);
  f.write(&c, 1);
  ASSERT_TRUE(f.good()) << "cannot flip byte " << offset << " of " << p;
}

TEST(Checkpoint, RoundTripsEveryDTypeBitExactWithOddScalarAndEmptyShapes) {
  TempDir dir;
  const fs::path p = dir / "all.h5";
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {1}, {7}, {3, 5}, {2, 3, 5}, {3, 0, 2}, {1, 1, 13}};
  std::mt19937 rng(1234);
  std::vector<std::string> names;
  std::vector<std::vector<unsigned char>> data;
  {
    mt::CheckpointWriter w(p);
    for (DType t : kAllDTypes)
      for (size_t s = 0; s < shapes.size(); ++s) {
        names.push_back(std::string("t_") + mt::dtype_name(t) + ".shape" + std::to_string(s));
        data.push_back(random_bytes(t, numel_of(shapes[s]), rng));
        w.write(names.back(), t, shapes[s], data.back().empty() ? nullptr : data.back().data());
      }
    w.commit();
  }
  mt::CheckpointReader r(p);
  EXPECT_EQ(r.format_version(), mt::kCheckpointFormatVersion);
  EXPECT_EQ(r.names(), names);  // write order
  size_t i = 0;
  for (DType t : kAllDTypes)
    for (const auto& shape : shapes) {
      SCOPED_TRACE(names[i]);
      ASSERT_TRUE(r.has(names[i]));
      EXPECT_EQ(r.info(names[i]).dtype, t);
      EXPECT_EQ(r.info(names[i]).shape, shape);
      EXPECT_EQ(r.info(names[i]).numel(), numel_of(shape));
      std::vector<unsigned char> back(data[i].size() + 1, 0xAB);
      r.read(names[i], t, shape, back.data());
      EXPECT_EQ(std::memcmp(back.data(), data[i].data(), data[i].size()), 0);
      EXPECT_EQ(back.back(), 0xAB);  // nothing written past the tensor
      ++i;
    }
}

TEST(Checkpoint, HalfTypesKeepTheirBitsAndDTypeAttribute) {
  TempDir dir;
  const fs::path p = dir / "half.h5";
  std::vector<mt::bf16> b = {mt::bf16(1.5f), mt::bf16(-0.0f), mt::bf16(3.0e38f)};
  std::vector<mt::f16> h = {mt::f16(-2.25f), mt::f16(6.0e-8f), mt::f16(65504.0f)};
  {
    mt::CheckpointWriter w(p);
    w.write("b", DType::kBF16, {3}, b.data());
    w.write("h", DType::kF16, {3}, h.data());
    w.commit();
  }
  mt::CheckpointReader r(p);
  std::vector<mt::bf16> b2(3);
  std::vector<mt::f16> h2(3);
  r.read("b", DType::kBF16, {3}, b2.data());
  r.read("h", DType::kF16, {3}, h2.data());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(b2[i].bits, b[i].bits);
    EXPECT_EQ(h2[i].bits, h[i].bits);
  }
  EXPECT_EQ(static_cast<float>(b2[0]), 1.5f);
  EXPECT_EQ(static_cast<float>(h2[0]), -2.25f);
}

TEST(Checkpoint, HalfTypesAreStoredAsRawU16WithDTypeAttribute) {
  TempDir dir;
  const fs::path p = dir / "half.h5";
  std::vector<mt::bf16> b = {mt::bf16(1.5f)};
  {
    mt::CheckpointWriter w(p);
    w.write("b", DType::kBF16, {1}, b.data());
    w.commit();
  }
  // Raw HDF5 view: 16-bit unsigned storage plus our dtype name, as Note [Checkpoint format] says.
  hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/tensors/b", H5P_DEFAULT);
  hid_t t = H5Dget_type(d);
  EXPECT_GT(H5Tequal(t, H5T_STD_U16LE), 0);
  EXPECT_EQ(mt::h5_read_attr_string(d, "dtype", "test"), "bf16");
  H5Tclose(t);
  H5Dclose(d);
  H5Fclose(f);
}

TEST(Checkpoint, MetadataRoundTripsInWriteOrder) {
  TempDir dir;
  const fs::path p = dir / "meta.h5";
  std::string recipe = "model:\n  layers: 24\n  name: \"π-moe\"\n";
  while (recipe.size() < 100000) recipe += "# padding line beyond the 64 KiB attribute limit\n";
  const std::vector<uint64_t> rng_state = {0, 1, std::numeric_limits<uint64_t>::max(), 0x9E3779B97F4A7C15ull};
  {
    mt::CheckpointWriter w(p);
    w.write_int("step", 1200);
    w.write_int("tokens", std::numeric_limits<int64_t>::max());
    w.write_int("neg", -5);
    w.write_double("loss_scale", 65536.0);
    w.write_double("lr", 0.1);
    w.write_double("inf", std::numeric_limits<double>::infinity());
    w.write_string("recipe", recipe);
    w.write_string("empty", "");
    w.write_u64s("rng.cpu", rng_state);
    w.write_u64s("rng.none", {});
    w.commit();
  }
  mt::CheckpointReader r(p);
  EXPECT_EQ(r.meta_keys(), (std::vector<std::string>{"step", "tokens", "neg", "loss_scale", "lr", "inf", "recipe",
                                                      "empty", "rng.cpu", "rng.none"}));
  EXPECT_TRUE(r.names().empty());
  EXPECT_EQ(r.read_int("step"), 1200);
  EXPECT_EQ(r.read_int("tokens"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(r.read_int("neg"), -5);
  EXPECT_EQ(r.read_double("loss_scale"), 65536.0);
  EXPECT_EQ(r.read_double("lr"), 0.1);
  EXPECT_TRUE(std::isinf(r.read_double("inf")));
  EXPECT_EQ(r.read_string("recipe"), recipe);
  EXPECT_EQ(r.read_string("empty"), "");
  EXPECT_EQ(r.read_u64s("rng.cpu"), rng_state);
  EXPECT_TRUE(r.read_u64s("rng.none").empty());
  EXPECT_EQ(r.meta_kind("recipe"), mt::MetaKind::kString);
  EXPECT_TRUE(r.has_meta("step"));
  EXPECT_FALSE(r.has_meta("steps"));

  std::string missing = error_of([&] { r.read_int("seed"); });
  EXPECT_NE(missing.find("'seed'"), std::string::npos) << missing;
  EXPECT_NE(missing.find(p.string()), std::string::npos) << missing;
  std::string kind = error_of([&] { r.read_int("recipe"); });
  EXPECT_NE(kind.find("'recipe'"), std::string::npos) << kind;
  EXPECT_NE(kind.find("string"), std::string::npos) << kind;
  EXPECT_NE(kind.find("int64"), std::string::npos) << kind;
}

TEST(Checkpoint, ReadWithWrongShapeOrDTypeNamesTensorAndBoth) {
  TempDir dir;
  const fs::path p = dir / "w.h5";
  std::vector<mt::bf16> w(12);
  {
    mt::CheckpointWriter wr(p);
    wr.write("blocks.3.moe.experts.w1", DType::kBF16, {4, 3}, w.data());
    wr.commit();
  }
  mt::CheckpointReader r(p);
  std::vector<mt::bf16> out(12);
  std::string shape = error_of([&] { r.read("blocks.3.moe.experts.w1", DType::kBF16, {3, 4}, out.data()); });
  EXPECT_NE(shape.find("'blocks.3.moe.experts.w1'"), std::string::npos) << shape;
  EXPECT_NE(shape.find("[4, 3]"), std::string::npos) << shape;
  EXPECT_NE(shape.find("[3, 4]"), std::string::npos) << shape;
  std::vector<float> outf(12);
  std::string dtype = error_of([&] { r.read("blocks.3.moe.experts.w1", DType::kF32, {4, 3}, outf.data()); });
  EXPECT_NE(dtype.find("'blocks.3.moe.experts.w1'"), std::string::npos) << dtype;
  EXPECT_NE(dtype.find("bf16"), std::string::npos) << dtype;
  EXPECT_NE(dtype.find("f32"), std::string::npos) << dtype;
  std::string missing = error_of([&] { r.info("blocks.3.moe.experts.w2"); });
  EXPECT_NE(missing.find("'blocks.3.moe.experts.w2'"), std::string::npos) << missing;
}

TEST(Checkpoint, WriterRefusesBadNamesDuplicatesAndUseAfterCommit) {
  TempDir dir;
  mt::CheckpointWriter w(dir / "x.h5");
  float v = 1;
  for (const char* bad : {"", ".", "a..b", "a/b", ".a", "a.", "a b"}) {
    std::string msg = error_of([&] { w.write(bad, DType::kF32, {}, &v); });
    EXPECT_NE(msg.find(std::string("'") + bad + "'"), std::string::npos) << msg;
  }
  w.write("a.b", DType::kF32, {}, &v);
  std::string dup = error_of([&] { w.write("a.b", DType::kF32, {}, &v); });
  EXPECT_NE(dup.find("'a.b' written twice"), std::string::npos) << dup;
  EXPECT_NE(error_of([&] { w.write("c", DType::kF32, {-1}, &v); }).find("[-1]"), std::string::npos);
  EXPECT_NE(error_of([&] { w.write_string("s", std::string("a\0b", 3)); }).find("NUL"), std::string::npos);
  w.commit();
  EXPECT_NE(error_of([&] { w.write_int("late", 1); }).find("after commit"), std::string::npos);
  mt::CheckpointReader r(dir / "x.h5");
  EXPECT_EQ(r.names(), std::vector<std::string>{"a.b"});
}

TEST(Checkpoint, UncommittedWriterLeavesNoFileAndKeepsTheGoodOne) {
  TempDir dir;
  const fs::path good = dir / "step_00000010.h5";
  write_small(good, 1.0f);
  const auto good_bytes = fs::file_size(good);
  {
    mt::CheckpointWriter w(good);
    std::vector<float> other(64, 9.0f);
    w.write("blocks.0.attn.w_qkv", DType::kF32, {8, 8}, other.data());
    EXPECT_TRUE(fs::exists(dir / "step_00000010.h5.tmp"));  // the write goes to the temp file
  }
  EXPECT_FALSE(fs::exists(dir / "step_00000010.h5.tmp"));
  EXPECT_EQ(fs::file_size(good), good_bytes);
  EXPECT_EQ(read_w0(mt::CheckpointReader(good))[5], 6.0f);

  // An exception while saving a new checkpoint: no final file, no temp file.
  const fs::path fresh = dir / "step_00000020.h5";
  EXPECT_THROW(
      {
        mt::CheckpointWriter w(fresh);
        w.write_int("step", 20);
        throw std::runtime_error("out of disk during save");
      },
      std::runtime_error);
  EXPECT_FALSE(fs::exists(fresh));
  EXPECT_FALSE(fs::exists(dir / "step_00000020.h5.tmp"));
}

TEST(Checkpoint, CommitReplacesAnExistingCheckpoint) {
  TempDir dir;
  const fs::path p = dir / "c.h5";
  write_small(p, 1.0f);
  write_small(p, 100.0f);
  EXPECT_FALSE(fs::exists(dir / "c.h5.tmp"));
  EXPECT_EQ(read_w0(mt::CheckpointReader(p))[0], 100.0f);
}

TEST(Checkpoint, MissingAndForeignFilesAreNamed) {
  TempDir dir;
  const fs::path missing = dir / "nope.h5";
  std::string m = error_of([&] { mt::CheckpointReader r(missing); });
  EXPECT_NE(m.find(missing.string()), std::string::npos) << m;
  EXPECT_NE(m.find("does not exist"), std::string::npos) << m;

  const fs::path text = dir / "text.h5";
  std::ofstream(text) << "model:\n  layers: 2\n";
  std::string t = error_of([&] { mt::CheckpointReader r(text); });
  EXPECT_NE(t.find(text.string()), std::string::npos) << t;
  EXPECT_NE(t.find("not an HDF5 file"), std::string::npos) << t;

  // An HDF5 file that is not ours.
  const fs::path other = dir / "other.h5";
  H5Fclose(H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  std::string o = error_of([&] { mt::CheckpointReader r(other); });
  EXPECT_NE(o.find(other.string()), std::string::npos) << o;
  EXPECT_NE(o.find("not a moetrain checkpoint"), std::string::npos) << o;
}

// Root attributes as a writer would leave them, with `complete` and `format_version` chosen by the test.
void write_root_only(const fs::path& p, int64_t version, bool complete) {
  hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  mt::h5_write_attr_string(f, mt::ckpt::kFormatAttr, mt::ckpt::kFormatName, "test");
  mt::h5_write_attr_int64(f, mt::ckpt::kVersionAttr, version, "test");
  if (complete) mt::h5_write_attr_int64(f, mt::ckpt::kCompleteAttr, 1, "test");
  H5Gclose(H5Gcreate2(f, mt::ckpt::kTensorGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Gclose(H5Gcreate2(f, mt::ckpt::kMetaGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  mt::h5_write_attr_u32(f, mt::ckpt::kChecksumAttr, 0, "test");
  H5Fclose(f);
}

TEST(Checkpoint, IncompleteOrNewerFormatIsRefused) {
  TempDir dir;
  const fs::path ok = dir / "ok.h5";
  write_root_only(ok, mt::kCheckpointFormatVersion, true);
  EXPECT_TRUE(mt::CheckpointReader(ok).names().empty());  // the hand-made file itself is valid

  const fs::path incomplete = dir / "incomplete.h5";
  write_root_only(incomplete, mt::kCheckpointFormatVersion, false);
  std::string i = error_of([&] { mt::CheckpointReader r(incomplete); });
  EXPECT_NE(i.find(incomplete.string()), std::string::npos) << i;
  EXPECT_NE(i.find("incomplete"), std::string::npos) << i;

  const fs::path newer = dir / "newer.h5";
  write_root_only(newer, 2, true);
  std::string n = error_of([&] { mt::CheckpointReader r(newer); });
  EXPECT_NE(n.find(newer.string()), std::string::npos) << n;
  EXPECT_NE(n.find("format version 2"), std::string::npos) << n;
}

// A file made by another writer from Note [Checkpoint format] alone (as an h5py script making
// golden test data would), with groups that do not track creation order: read in name order.
TEST(Checkpoint, FileFromAnotherWriterFollowingTheNoteIsRead) {
  TempDir dir;
  const fs::path p = dir / "foreign.h5";
  const std::vector<int32_t> b = {7, 8, 9};
  const double a = 2.5;
  hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  mt::h5_write_attr_string(f, "format", "moetrain-checkpoint", "test");
  mt::h5_write_attr_int64(f, "format_version", 1, "test");
  hid_t g = H5Gcreate2(f, "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Gclose(H5Gcreate2(f, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  hsize_t three = 3;
  hid_t s3 = H5Screate_simple(1, &three, nullptr), s0 = H5Screate(H5S_SCALAR);
  hid_t db = H5Dcreate2(g, "z.b", H5T_STD_I32LE, s3, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t da = H5Dcreate2(g, "y.a", H5T_IEEE_F64LE, s0, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(db, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, b.data());
  H5Dwrite(da, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &a);
  const uint32_t crc_b = mt::checkpoint_crc32(b.data(), 12), crc_a = mt::checkpoint_crc32(&a, 8);
  mt::h5_write_attr_string(db, "dtype", "i32", "test");
  mt::h5_write_attr_u32(db, "crc32", crc_b, "test");
  mt::h5_write_attr_string(da, "dtype", "f64", "test");
  mt::h5_write_attr_u32(da, "crc32", crc_a, "test");
  // Root checksum: entries in iteration order (here name order: y.a, z.b), "<group>/<name>\0" + crc LE.
  std::string index = std::string("tensors/y.a") + '\0' + std::string(reinterpret_cast<const char*>(&crc_a), 4) +
                      std::string("tensors/z.b") + '\0' + std::string(reinterpret_cast<const char*>(&crc_b), 4);
  mt::h5_write_attr_u32(f, "checksum", mt::checkpoint_crc32(index.data(), index.size()), "test");
  mt::h5_write_attr_int64(f, "complete", 1, "test");
  for (hid_t id : {db, da}) H5Dclose(id);
  for (hid_t id : {s3, s0}) H5Sclose(id);
  H5Gclose(g);
  H5Fclose(f);

  mt::CheckpointReader r(p);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"y.a", "z.b"}));
  std::vector<int32_t> b2(3);
  r.read("z.b", DType::kI32, {3}, b2.data());
  EXPECT_EQ(b2, b);
  double a2 = 0;
  r.read("y.a", DType::kF64, {}, &a2);
  EXPECT_EQ(a2, 2.5);
}

TEST(Checkpoint, TruncatedFileIsDetectedAndNamed) {
  TempDir dir;
  const fs::path p = dir / "step_00000100.h5";
  write_small(p);
  const auto size = fs::file_size(p);
  const fs::path cut = dir / "cut.h5";
  for (uintmax_t keep : {size - 1, size - 100, size / 2, uintmax_t{512}, uintmax_t{8}, uintmax_t{4}, uintmax_t{0}}) {
    SCOPED_TRACE(keep);
    fs::copy_file(p, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, keep);
    std::string msg = error_of([&] { mt::CheckpointReader r(cut); });
    EXPECT_NE(msg.find(cut.string()), std::string::npos) << msg;
  }
}

TEST(Checkpoint, FlippedByteInTensorDataNamesTheTensor) {
  TempDir dir;
  const fs::path p = dir / "flip.h5";
  write_small(p);
  const haddr_t off = dataset_offset(p, "/tensors/blocks.0.attn.w_qkv");
  for (std::streamoff k : {0, 100, 255}) {  // first, middle and last byte of the 256-byte tensor
    SCOPED_TRACE(k);
    const fs::path q = dir / "flipped.h5";
    fs::copy_file(p, q, fs::copy_options::overwrite_existing);
    flip_byte(q, static_cast<std::streamoff>(off) + k);
    std::string msg = error_of([&] { mt::CheckpointReader r(q); });
    EXPECT_NE(msg.find(q.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("tensor 'blocks.0.attn.w_qkv'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("damaged"), std::string::npos) << msg;
  }
  // Metadata is checksummed the same way.
  const fs::path q = dir / "flipped_meta.h5";
  fs::copy_file(p, q);
  flip_byte(q, static_cast<std::streamoff>(dataset_offset(q, "/meta/recipe")) + 3);
  std::string msg = error_of([&] { mt::CheckpointReader r(q); });
  EXPECT_NE(msg.find("metadata 'recipe'"), std::string::npos) << msg;
}

// Every single-byte change anywhere in the file is either refused on open or changes nothing a
// reader can see (bytes HDF5 never reads); it never yields different data.
TEST(Checkpoint, NoSingleByteFlipAnywhereYieldsWrongData) {
  TempDir dir;
  const fs::path p = dir / "sweep.h5";
  write_small(p);
  const std::vector<float> w0 = read_w0(mt::CheckpointReader(p));
  const auto size = static_cast<std::streamoff>(fs::file_size(p));
  const fs::path q = dir / "q.h5";
  fs::copy_file(p, q);
  int refused = 0;
  for (std::streamoff i = 0; i < size; ++i) {
    flip_byte(q, i);
    try {
      mt::CheckpointReader r(q);
      ASSERT_EQ(read_w0(r), w0) << "byte " << i;
      ASSERT_EQ(r.read_int("step"), 1200) << "byte " << i;
      ASSERT_EQ(r.read_string("recipe"), "model:\n  layers: 2\n") << "byte " << i;
      std::vector<int64_t> pos(3);
      r.read("loader.position", DType::kI64, {3}, pos.data());
      ASSERT_EQ(pos, (std::vector<int64_t>{3, 1, 4})) << "byte " << i;
      ASSERT_EQ(r.names().size(), 2u) << "byte " << i;
      ASSERT_EQ(r.meta_keys().size(), 2u) << "byte " << i;
    } catch (const mt::Error& e) {
      ASSERT_NE(std::string(e.what()).find(q.string()), std::string::npos) << e.what();
      ++refused;
    }
    flip_byte(q, i);  // restore
  }
  EXPECT_GT(refused, size / 2) << "of " << size << " bytes";
}

TEST(Checkpoint, RemovedOrConsistentlyRewrittenDatasetFailsTheRootChecksum) {
  TempDir dir;
  const fs::path p = dir / "r.h5";
  write_small(p);
  // Remove a dataset: every remaining one is intact, only the root checksum can tell.
  const fs::path removed = dir / "removed.h5";
  fs::copy_file(p, removed);
  hid_t f = H5Fopen(removed.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(H5Ldelete(f, "/tensors/loader.position", H5P_DEFAULT), 0);
  H5Fclose(f);
  std::string msg = error_of([&] { mt::CheckpointReader r(removed); });
  EXPECT_NE(msg.find(removed.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("root checksum"), std::string::npos) << msg;

  // Rewrite a tensor and its crc32 attribute consistently.
  const fs::path rewritten = dir / "rewritten.h5";
  fs::copy_file(p, rewritten);
  f = H5Fopen(rewritten.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/tensors/loader.position", H5P_DEFAULT);
  std::vector<int64_t> pos = {9, 9, 9};
  ASSERT_GE(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, pos.data()), 0);
  uint32_t crc = mt::checkpoint_crc32(pos.data(), 24);
  hid_t a = H5Aopen(d, "crc32", H5P_DEFAULT);
  ASSERT_GE(H5Awrite(a, H5T_NATIVE_UINT32, &crc), 0);
  H5Aclose(a);
  H5Dclose(d);
  H5Fclose(f);
  msg = error_of([&] { mt::CheckpointReader r(rewritten); });
  EXPECT_NE(msg.find("root checksum"), std::string::npos) << msg;
}

}  // namespace
