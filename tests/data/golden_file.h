// GoldenFile: reads the datasets of a golden HDF5 file written by a PyTorch script in scripts/
// (as f64 values with their shape), for tests that compare against PyTorch.
#pragma once
#include <hdf5.h>

#include <algorithm>
#include <string>
#include <vector>

#include "mt/core/tensor.h"

namespace mt {

struct GoldenDataset {
  std::vector<double> values;
  Shape shape;
};

class GoldenFile {
 public:
  explicit GoldenFile(std::string path) : path_(std::move(path)) {
    file_ = H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    MT_CHECK(file_ >= 0, path_, ": cannot open as HDF5");
  }
  ~GoldenFile() { H5Fclose(file_); }
  GoldenFile(const GoldenFile&) = delete;
  GoldenFile& operator=(const GoldenFile&) = delete;

  GoldenDataset read(const std::string& name) const {
    hid_t d = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
    MT_CHECK(d >= 0, path_, ": no dataset '", name, "'");
    hid_t space = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(std::max(nd, 0));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    GoldenDataset out;
    for (hsize_t n : dims) out.shape.push_back(static_cast<int64_t>(n));
    out.values.resize(out.shape.numel());
    herr_t st = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.values.data());
    H5Sclose(space);
    H5Dclose(d);
    MT_CHECK(st >= 0, path_, ": cannot read dataset '", name, "'");
    return out;
  }
  double scalar(const std::string& name) const { return read(name).values.at(0); }
  bool has(const std::string& name) const { return H5Lexists(file_, name.c_str(), H5P_DEFAULT) > 0; }
  // The dataset as an f32 tensor.
  Tensor tensor(const std::string& name) const {
    GoldenDataset d = read(name);
    std::vector<float> v(d.values.begin(), d.values.end());
    return Tensor::from_vector<float>(v, d.shape);
  }

 private:
  std::string path_;
  hid_t file_ = -1;
};

}  // namespace mt
