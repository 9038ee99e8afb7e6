// Planning a synthetic street scene before anything is drawn: the street's
// layout, and which objects stand where. Objects get ground footprints that
// do not overlap, stay inside the camera's view, and objects of a required
// class are placed first and protected: nothing planned before or after may
// cover more than 30% of their image box.
#ifndef SEGQAT_ENGINE_DATA_SCENE_PLANNER_H_
#define SEGQAT_ENGINE_DATA_SCENE_PLANNER_H_

#include <cstdint>
#include <functional>
#include <opencv2/core.hpp>
#include <random>
#include <vector>

#include "engine/data/scene_background.h"
#include "engine/data/scene_canvas.h"

namespace segqat::data::scene {

struct PlannedObject {
  int layer;      // 0: behind the sidewalk edge, 1: along it, 2: sidewalks and road
  double z;       // depth of the near end; drawn far to near within a layer
  uint64_t seed;  // the object draws with its own rng, seeded with this
  std::function<void(Canvas&, const Camera&, std::mt19937&)> draw;
};

struct ScenePlan {
  StreetLayout layout;
  std::vector<PlannedObject> objects;  // in drawing order
};

// Plans a street scene for an image of `size`, drawing from rng. `required`
// lists train ids of rarer classes (wall, fence, rider, truck, bus, train,
// motorcycle, bicycle) that the plan must show; other ids are ignored.
ScenePlan PlanScene(cv::Size size, std::mt19937& rng, const std::vector<uint8_t>& required);

}  // namespace segqat::data::scene

#endif  // SEGQAT_ENGINE_DATA_SCENE_PLANNER_H_
