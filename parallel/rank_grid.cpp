#include "parallel/rank_grid.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

#include "runtime/error.h"

namespace longseq {

RankGrid::RankGrid(std::vector<GridDimension> dims, std::vector<std::string> order)
    : dims_(std::move(dims)) {
  LONGSEQ_REQUIRE(!dims_.empty(), "[rank_grid] a grid needs at least one dimension");
  std::int64_t product = 1;
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    const GridDimension& dim = dims_[i];
    LONGSEQ_REQUIRE(!dim.name.empty(), "[rank_grid] dimension {} has no name", i);
    LONGSEQ_REQUIRE(dim.size >= 1, "[rank_grid] dimension '{}' has size {}; sizes must be >= 1",
                    dim.name, dim.size);
    for (std::size_t j = 0; j < i; ++j) {
      LONGSEQ_REQUIRE(dims_[j].name != dim.name, "[rank_grid] dimension '{}' appears twice",
                      dim.name);
    }
    product *= dim.size;
    LONGSEQ_REQUIRE(product <= INT_MAX, "[rank_grid] the grid has more than {} ranks", INT_MAX);
  }
  size_ = static_cast<int>(product);

  if (order.empty()) {
    for (auto it = dims_.rbegin(); it != dims_.rend(); ++it) {
      order.push_back(it->name);
    }
  }
  LONGSEQ_REQUIRE(order.size() == dims_.size(),
                  "[rank_grid] the order names {} dimensions; the grid has {}", order.size(),
                  dims_.size());
  strides_.assign(dims_.size(), 0);
  int stride = 1;
  for (const std::string& name : order) {
    const auto index = static_cast<std::size_t>(dimension_index(name));
    LONGSEQ_REQUIRE(strides_[index] == 0, "[rank_grid] the order names '{}' twice", name);
    strides_[index] = stride;
    stride *= dims_[index].size;
  }
}

RankGrid RankGrid::data_by_sequence(int world_size, int sequence_size) {
  LONGSEQ_REQUIRE(world_size >= 1 && sequence_size >= 1 && world_size % sequence_size == 0,
                  "[rank_grid] a sequence-parallel size of {} does not divide {} ranks",
                  sequence_size, world_size);
  return RankGrid({{"data", world_size / sequence_size}, {"sequence", sequence_size}});
}

int RankGrid::dimension_index(std::string_view name) const {
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    if (dims_[i].name == name) {
      return static_cast<int>(i);
    }
  }
  std::string known;
  for (const GridDimension& dim : dims_) {
    known += known.empty() ? dim.name : ", " + dim.name;
  }
  throw UserError(fmt::format("[rank_grid] unknown dimension '{}'; the grid has {}", name, known));
}

int RankGrid::dimension_size(std::string_view name) const {
  return dims_[static_cast<std::size_t>(dimension_index(name))].size;
}

std::string RankGrid::describe() const {
  std::string text;
  for (const GridDimension& dim : dims_) {
    text += fmt::format("{}{} {}", text.empty() ? "" : " x ", dim.name, dim.size);
  }
  const auto fastest = std::min_element(strides_.begin(), strides_.end()) - strides_.begin();
  return fmt::format("{} ({} fastest)", text, dims_[static_cast<std::size_t>(fastest)].name);
}

void RankGrid::require_world_size(int world_size) const {
  LONGSEQ_REQUIRE(world_size == size_,
                  "[rank_grid] the grid {} covers {} ranks, but the job has {}", describe(), size_,
                  world_size);
}

void RankGrid::check_rank(int rank) const {
  LONGSEQ_REQUIRE(rank >= 0 && rank < size_,
                  "[rank_grid] rank {} is outside the grid {} of {} ranks", rank, describe(),
                  size_);
}

std::vector<int> RankGrid::coordinates(int rank) const {
  check_rank(rank);
  std::vector<int> result(dims_.size());
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    result[i] = (rank / strides_[i]) % dims_[i].size;
  }
  return result;
}

int RankGrid::coordinate(int rank, std::string_view dimension) const {
  const auto index = static_cast<std::size_t>(dimension_index(dimension));
  return coordinates(rank)[index];
}

int RankGrid::rank_at(std::span<const int> coordinates) const {
  LONGSEQ_REQUIRE(coordinates.size() == dims_.size(),
                  "[rank_grid] {} coordinates given; the grid {} has {} dimensions",
                  coordinates.size(), describe(), dims_.size());
  int rank = 0;
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    LONGSEQ_REQUIRE(coordinates[i] >= 0 && coordinates[i] < dims_[i].size,
                    "[rank_grid] coordinate {} is outside dimension '{}' of size {}",
                    coordinates[i], dims_[i].name, dims_[i].size);
    rank += coordinates[i] * strides_[i];
  }
  return rank;
}

std::vector<int> RankGrid::group(int rank, std::string_view dimension) const {
  const auto index = static_cast<std::size_t>(dimension_index(dimension));
  std::vector<int> at = coordinates(rank);
  std::vector<int> members;
  members.reserve(static_cast<std::size_t>(dims_[index].size));
  for (int c = 0; c < dims_[index].size; ++c) {
    at[index] = c;
    members.push_back(rank_at(at));
  }
  return members;
}

SplitKey RankGrid::split_key(int rank, std::string_view dimension) const {
  const auto index = static_cast<std::size_t>(dimension_index(dimension));
  std::vector<int> at = coordinates(rank);
  const int key = at[index];
  // The group's member at coordinate 0 identifies it: unique per group and non-negative.
  at[index] = 0;
  return SplitKey{rank_at(at), key};
}

}  // namespace longseq
