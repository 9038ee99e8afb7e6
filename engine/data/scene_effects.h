// What turns a flat-shaded synthetic scene into something camera-like:
// per-class texture (grain and blotches chosen by train id, so grass, leaves
// and asphalt look different), then per-image gain, contrast, brightness,
// sensor noise and sometimes blur. Only the image changes; the label is read.
#ifndef SEGQAT_ENGINE_DATA_SCENE_EFFECTS_H_
#define SEGQAT_ENGINE_DATA_SCENE_EFFECTS_H_

#include <random>

#include "engine/data/scene_canvas.h"

namespace segqat::data::scene {

void ApplyCameraEffects(Canvas& canvas, std::mt19937& rng);

}  // namespace segqat::data::scene

#endif  // SEGQAT_ENGINE_DATA_SCENE_EFFECTS_H_
