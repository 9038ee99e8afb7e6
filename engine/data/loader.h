// The batch loader: decodes and augments one epoch of samples on worker
// threads, ahead of the trainer, and hands out stacked, normalised batches in
// order.
#ifndef SEGQAT_ENGINE_DATA_LOADER_H_
#define SEGQAT_ENGINE_DATA_LOADER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/data/sample.h"
#include "engine/data/transforms.h"

namespace segqat::data {

// n images of height x width, stacked.
struct Batch {
  int n = 0, height = 0, width = 0;
  std::vector<float> images;    // n*3*height*width, normalised, CHW per image (NCHW)
  std::vector<uint8_t> labels;  // n*height*width, train ids or ignore_index
  std::vector<std::string> image_paths;
};

enum class LoaderMode { kTrain, kEval };

struct LoaderOptions {
  LoaderMode mode = LoaderMode::kTrain;
  int batch_size = 1;
  bool shuffle = true;    // train only; a fresh permutation each epoch from (seed, epoch)
  bool drop_last = true;  // train only: drop the incomplete last batch; eval keeps it
  uint64_t seed = 0;
  int num_workers = 2;       // decoding/augmenting threads; 0 = decode inside Next()
  int prefetch_batches = 4;  // at most this many batches ready or in preparation
  int num_classes = 19;
  AugmentOptions augment;
  // Data-parallel training: the shuffled order is cut into global batches of
  // batch_size * num_shards samples, and this loader yields slice `shard` of
  // each, so the shards together see exactly one loader's global batches.
  // Train mode with drop_last only.
  int shard = 0;
  int num_shards = 1;
};

// Train batches are augment.train_crop sized (TrainTransform); eval batches
// are augment.eval_crop sized (EvalTransform pads every image to it), so a
// batch always stacks.
//
// Determinism: the visiting order depends only on (seed, epoch) and each
// sample's augmentation uses an rng seeded from (seed, epoch, index of the
// sample in `entries`), so the batches are identical whatever num_workers,
// prefetch_batches or thread timing are.
//
// Thread safety: thread-compatible. Next() must not be called from two
// threads at once; the worker threads are internal. Memory is bounded by
// prefetch_batches batches.
class BatchLoader {
 public:
  // Starts the worker threads for one pass (epoch) over entries. Never fails
  // here: invalid options (batch_size < 1, num_workers < 0,
  // prefetch_batches < 1, num_classes outside [1, 256], ValidateAugmentOptions)
  // or threads that cannot be started make Next() return InvalidArgument /
  // ResourceExhausted.
  BatchLoader(std::vector<ListEntry> entries, LoaderOptions options, int epoch);
  // Stops and joins the threads, also mid-epoch; blocks at most for the
  // samples being decoded at that moment.
  ~BatchLoader();

  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in order (blocking until it is ready); std::nullopt once the
  // epoch is over. When a sample fails (LoadSample or EvalTransform error,
  // naming the file), the batches before it are still returned, then that
  // error is returned by this and every later call.
  absl::StatusOr<std::optional<Batch>> Next();

  // Batches in this epoch: floor(N / batch_size) in train mode with
  // drop_last, else ceil(N / batch_size); 0 when the options are invalid.
  int64_t num_batches() const { return num_batches_; }

 private:
  absl::Status ValidateOptions() const;
  void StartWorkers();
  void StopWorkers();
  void WorkerLoop();
  // Decodes, augments and stacks batch `index`. Reads only immutable state.
  absl::StatusOr<Batch> MakeBatch(int64_t index) const;
  absl::Status AddSample(int64_t entry_index, int slot, Batch& batch) const;

  const std::vector<ListEntry> entries_;
  const LoaderOptions options_;
  const int epoch_;
  std::vector<int64_t> order_;  // indices into entries_, in visiting order
  int64_t num_batches_ = 0;
  absl::Status init_status_;
  std::atomic<bool> cancelled_{false};  // tells MakeBatch to give up early

  std::mutex mu_;
  std::condition_variable work_cv_;   // a worker may claim a batch, or stop
  std::condition_variable ready_cv_;  // a batch was finished
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_to_claim_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_to_return_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t first_failed_ ABSL_GUARDED_BY(mu_) = INT64_MAX;  // lowest failed batch so far
  std::map<int64_t, absl::StatusOr<Batch>> ready_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);  // sticky, once returned by Next()
  std::vector<std::thread> threads_;
};

}  // namespace segqat::data

#endif  // SEGQAT_ENGINE_DATA_LOADER_H_
