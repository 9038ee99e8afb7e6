#include "engine/data/loader.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <numeric>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/data/image_io.h"
#include "engine/data/random.h"

namespace segqat::data {
namespace {

// Salt so the shuffle stream differs from the per-sample augmentation streams.
constexpr uint64_t kShuffleSalt = 0x53485546464C45ull;  // "SHUFFLE"

std::vector<int64_t> VisitingOrder(int64_t n, const LoaderOptions& options, int epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  if (options.mode != LoaderMode::kTrain || !options.shuffle) return order;
  std::mt19937 rng = MakeRng(MixSeed(options.seed, static_cast<uint64_t>(epoch), kShuffleSalt));
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates
    std::swap(order[i], order[UniformInt(rng, static_cast<int>(i + 1))]);
  }
  return order;
}

}  // namespace

BatchLoader::BatchLoader(std::vector<ListEntry> entries, LoaderOptions options, int epoch)
    : entries_(std::move(entries)), options_(std::move(options)), epoch_(epoch) {
  init_status_ = ValidateOptions();
  if (!init_status_.ok()) return;
  const int64_t n = static_cast<int64_t>(entries_.size());
  const int64_t bs = options_.batch_size;
  const bool drop_last = options_.mode == LoaderMode::kTrain && options_.drop_last;
  num_batches_ = drop_last ? n / bs : (n + bs - 1) / bs;
  order_ = VisitingOrder(n, options_, epoch_);
  if (options_.num_shards > 1) {
    const int64_t global = bs * options_.num_shards;
    std::vector<int64_t> mine;
    for (int64_t g = 0; g + global <= n; g += global) {
      for (int64_t i = 0; i < bs; ++i) mine.push_back(order_[g + options_.shard * bs + i]);
    }
    order_ = std::move(mine);
    num_batches_ = static_cast<int64_t>(order_.size()) / bs;
  }
  StartWorkers();
}

BatchLoader::~BatchLoader() { StopWorkers(); }

absl::Status BatchLoader::ValidateOptions() const {
  if (options_.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch size must be >= 1, got ", options_.batch_size));
  }
  if (options_.num_workers < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_workers must be >= 0, got ", options_.num_workers));
  }
  if (options_.num_shards < 1 || options_.shard < 0 || options_.shard >= options_.num_shards ||
      (options_.num_shards > 1 && (options_.mode != LoaderMode::kTrain || !options_.drop_last))) {
    return absl::InvalidArgumentError(absl::StrCat("shard ", options_.shard, " of ",
                                                   options_.num_shards,
                                                   " (sharding is for training batches)"));
  }
  if (options_.prefetch_batches < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefetch_batches must be >= 1, got ", options_.prefetch_batches));
  }
  if (options_.num_classes < 1 || options_.num_classes > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("NUM_CLASSES must be in [1, 256], got ", options_.num_classes));
  }
  if (entries_.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("too many samples for one epoch");
  }
  return ValidateAugmentOptions(options_.augment);
}

void BatchLoader::StartWorkers() {
  const int64_t wanted = std::min<int64_t>(options_.num_workers, num_batches_);
  try {
    for (int64_t i = 0; i < wanted; ++i) threads_.emplace_back([this] { WorkerLoop(); });
  } catch (const std::system_error& e) {
    init_status_ =
        absl::ResourceExhaustedError(absl::StrCat("cannot start data loader threads: ", e.what()));
    StopWorkers();
  }
}

void BatchLoader::StopWorkers() {
  cancelled_.store(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void BatchLoader::WorkerLoop() {
  const int64_t window = options_.prefetch_batches;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return stop_ || next_to_claim_ >= num_batches_ || next_to_claim_ > first_failed_ ||
             next_to_claim_ < next_to_return_ + window;
    });
    if (stop_ || next_to_claim_ >= num_batches_ || next_to_claim_ > first_failed_) return;
    const int64_t index = next_to_claim_++;
    lock.unlock();
    absl::StatusOr<Batch> batch = MakeBatch(index);
    lock.lock();
    if (!batch.ok()) first_failed_ = std::min(first_failed_, index);
    ready_.emplace(index, std::move(batch));
    ready_cv_.notify_all();
  }
}

absl::StatusOr<std::optional<Batch>> BatchLoader::Next() {
  if (!init_status_.ok()) return init_status_;
  std::unique_lock<std::mutex> lock(mu_);
  if (!error_.ok()) return error_;
  if (next_to_return_ >= num_batches_) return std::optional<Batch>();

  absl::StatusOr<Batch> batch;
  if (threads_.empty()) {  // num_workers == 0: decode here.
    batch = MakeBatch(next_to_return_);
  } else {
    ready_cv_.wait(
        lock, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return ready_.count(next_to_return_) > 0; });
    auto node = ready_.extract(next_to_return_);
    batch = std::move(node.mapped());
  }
  ++next_to_return_;
  work_cv_.notify_all();
  if (!batch.ok()) {
    error_ = batch.status();
    cancelled_.store(true);  // Nothing after the failure will be handed out.
    return error_;
  }
  return std::optional<Batch>(*std::move(batch));
}

absl::StatusOr<Batch> BatchLoader::MakeBatch(int64_t index) const {
  const int64_t begin = index * options_.batch_size;
  const int64_t end =
      std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order_.size()));
  const cv::Size size = options_.mode == LoaderMode::kTrain ? options_.augment.train_crop
                                                            : options_.augment.eval_crop;
  Batch batch;
  batch.n = static_cast<int>(end - begin);
  batch.height = size.height;
  batch.width = size.width;
  const size_t pixels = static_cast<size_t>(size.height) * size.width;
  try {
    batch.images.resize(batch.n * 3 * pixels);
    batch.labels.resize(batch.n * pixels);
    batch.image_paths.reserve(batch.n);
    for (int slot = 0; slot < batch.n; ++slot) {
      if (cancelled_.load(std::memory_order_relaxed)) {
        return absl::CancelledError("data loader stopped");
      }
      if (absl::Status s = AddSample(order_[begin + slot], slot, batch); !s.ok()) return s;
    }
  } catch (const std::exception& e) {  // std::bad_alloc, mostly.
    return absl::ResourceExhaustedError(absl::StrCat("preparing batch ", index, ": ", e.what()));
  }
  return batch;
}

absl::Status BatchLoader::AddSample(int64_t entry_index, int slot, Batch& batch) const {
  const ListEntry& entry = entries_[entry_index];
  const AugmentOptions& augment = options_.augment;
  absl::StatusOr<Sample> sample = LoadSample(entry, options_.num_classes, augment.ignore_index);
  if (!sample.ok()) return sample.status();

  Sample out;
  if (options_.mode == LoaderMode::kTrain) {
    std::mt19937 rng = MakeRng(
        MixSeed(options_.seed, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(entry_index)));
    try {
      out = TrainTransform(*sample, augment, rng);
    } catch (const cv::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("augmenting image ", EntryName(entry), ": ", e.what()));
    }
  } else {
    absl::StatusOr<Sample> eval = EvalTransform(*sample, augment);
    if (!eval.ok()) return eval.status();
    out = *std::move(eval);
  }

  const size_t pixels = static_cast<size_t>(batch.height) * batch.width;
  NormalizeToChw(out.image, augment, batch.images.data() + slot * 3 * pixels);
  uint8_t* labels = batch.labels.data() + slot * pixels;
  for (int y = 0; y < out.label.rows; ++y) {
    std::memcpy(labels + static_cast<size_t>(y) * batch.width, out.label.ptr<uint8_t>(y),
                batch.width);
  }
  batch.image_paths.push_back(entry.image_path);
  return absl::OkStatus();
}

}  // namespace segqat::data
