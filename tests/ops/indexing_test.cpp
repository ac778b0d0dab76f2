// Indexing and shape ops: index_select/index_add (duplicate indices add), gather/scatter_add,
// topk (ties: lower index first), cumsum, cat/split/stack, and f64 gradchecks.
#include <gtest/gtest.h>

#include "op_test_util.h"

using namespace mt;
using mt::testing::expect_gradcheck;
using mt::testing::expect_values;
using mt::testing::leaf;

namespace {
Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector<double>(v, s); }
Tensor i64(const std::vector<int64_t>& v, const Shape& s) { return Tensor::from_vector<int64_t>(v, s); }
}  // namespace

TEST(Indexing, IndexSelectAlongDims) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {3, 2});
  expect_values(index_select(a, 0, i64({2, 0, 2}, {3})), {5, 6, 1, 2, 5, 6});
  Tensor idx32 = Tensor::from_vector<int32_t>({1}, {1});
  expect_values(index_select(a, 1, idx32), {2, 4, 6});
  EXPECT_EQ(index_select(a, 1, idx32).shape(), Shape({3, 1}));
  EXPECT_THROW(index_select(a, 0, i64({3}, {1})), Error);
}

TEST(Indexing, IndexAddSumsDuplicateIndices) {
  Tensor a = zeros({3, 2}, {DType::kF64});
  Tensor src = f64({1, 2, 3, 4, 5, 6}, {3, 2});
  expect_values(index_add(a, 0, i64({0, 2, 0}, {3}), src), {6, 8, 0, 0, 3, 4});
  expect_values(a, {0, 0, 0, 0, 0, 0});  // out-of-place
  Tensor b = ones({2, 3}, {DType::kF64});
  expect_values(index_add(b, 1, i64({1, 1}, {2}), f64({1, 2, 3, 4}, {2, 2})), {1, 4, 1, 1, 8, 1});
}

TEST(Indexing, GatherAndScatterAdd) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_values(gather(a, 1, i64({2, 0, 1, 1}, {2, 2})), {3, 1, 5, 5});
  expect_values(gather(a, 0, i64({1, 0, 1}, {1, 3})), {4, 2, 6});
  Tensor z = zeros({2, 3}, {DType::kF64});
  expect_values(scatter_add(z, 1, i64({0, 0, 2, 1}, {2, 2}), f64({1, 2, 3, 4}, {2, 2})), {3, 0, 0, 0, 4, 3});
}

TEST(Indexing, TopkOrdersTiesByLowerIndex) {
  auto [v, i] = topk(f64({1, 3, 3, 2}, {4}), 3);
  expect_values(v, {3, 3, 2});
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));
  auto [v0, i0] = topk(f64({1, 5, 4, 4, 2, 6}, {3, 2}), 2, 0);  // columns [1, 4, 2], [5, 4, 6]
  EXPECT_EQ(v0.shape(), Shape({2, 2}));
  expect_values(v0, {4, 6, 2, 5});
  EXPECT_EQ(i0.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 2, 0}));
}

TEST(Indexing, CumsumAlongDims) {
  expect_values(cumsum(f64({1, 2, 3, 4}, {4})), {1, 3, 6, 10});
  expect_values(cumsum(f64({1, 2, 3, 4}, {2, 2}), 0), {1, 2, 4, 6});
  EXPECT_EQ(cumsum(i64({1, 1, 1}, {3})).to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));
}

TEST(Indexing, CatSplitStack) {
  Tensor a = f64({1, 2, 3, 4}, {2, 2});
  Tensor b = f64({5, 6}, {1, 2});
  Tensor c = cat({a, b}, 0);
  EXPECT_EQ(c.shape(), Shape({3, 2}));
  expect_values(c, {1, 2, 3, 4, 5, 6});
  expect_values(cat({a, f64({7, 8}, {2, 1})}, 1), {1, 2, 7, 3, 4, 8});
  std::vector<Tensor> parts = split(c, 2, 0);
  ASSERT_EQ(parts.size(), 2u);
  expect_values(parts[0], {1, 2, 3, 4});
  expect_values(parts[1], {5, 6});
  std::vector<Tensor> cols = split(c, std::vector<int64_t>{1, 1}, 1);
  expect_values(cols[1], {2, 4, 6});
  Tensor s = stack({f64({1, 2}, {2}), f64({3, 4}, {2})}, 1);
  EXPECT_EQ(s.shape(), Shape({2, 2}));
  expect_values(s, {1, 3, 2, 4});
  EXPECT_THROW(cat({a, f64({1, 2, 3}, {1, 3})}, 0), Error);
}

TEST(IndexingGrad, RowAndElementIndexing) {
  Tensor a = leaf({0.5, -1.2, 2.0, 1.5, -0.3, 0.8}, {3, 2});
  Tensor src = leaf({0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {3, 2});
  Tensor rows = i64({2, 0, 2}, {3});
  expect_gradcheck([rows](const std::vector<Tensor>& x) { return index_select(x[0], 0, rows); }, {a});
  expect_gradcheck([rows](const std::vector<Tensor>& x) { return index_add(x[0], 0, rows, x[1]); }, {a, src});
  Tensor idx = i64({1, 0, 1, 1, 0, 0}, {3, 2});
  expect_gradcheck([idx](const std::vector<Tensor>& x) { return gather(x[0], 1, idx); }, {a});
  expect_gradcheck([idx](const std::vector<Tensor>& x) { return scatter_add(x[0], 1, idx, x[1]); }, {a, src});
}

TEST(IndexingGrad, TopkCumsumCatSplitStack) {
  Tensor a = leaf({0.5, -1.2, 2.0, 1.5, -0.3, 0.8}, {2, 3});
  Tensor b = leaf({0.1, 0.9, -0.4}, {1, 3});
  expect_gradcheck([](const std::vector<Tensor>& x) { return topk(x[0], 2, 1).first; }, {a});
  expect_gradcheck([](const std::vector<Tensor>& x) { return cumsum(x[0], 1); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& x) { return cumsum(x[0], 0); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& x) { return cat({x[0], x[1]}, 0); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& x) { return stack({x[0].select(0, 1), x[1].squeeze(0)}, 1); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& x) {
    std::vector<Tensor> p = split(x[0], std::vector<int64_t>{1, 2}, 1);
    return add(mul(p[0], 3.0), sum(p[1], {1}, true));
  }, {a});
}
