#include "engine/data/street_scene.h"

#include <random>

#include "engine/data/cityscapes.h"
#include "engine/data/random.h"
#include "engine/data/scene_background.h"
#include "engine/data/scene_canvas.h"
#include "engine/data/scene_effects.h"
#include "engine/data/scene_planner.h"

namespace segqat::data {

StreetScene RenderStreetScene(cv::Size size, uint64_t seed, const std::vector<uint8_t>& required) {
  std::mt19937 rng = MakeRng(seed);
  const scene::ScenePlan plan = scene::PlanScene(size, rng, required);
  std::mt19937 background_rng = MakeRng(Draw64(rng));
  std::mt19937 finish_rng = MakeRng(Draw64(rng));
  const bool ego_vehicle = Bernoulli(rng, 0.4);

  scene::Canvas canvas(size, cityscapes::kSky);
  scene::DrawSky(canvas, plan.layout, background_rng);
  scene::DrawGround(canvas, plan.layout, background_rng);
  scene::DrawBuildings(canvas, plan.layout, background_rng);
  for (const scene::PlannedObject& object : plan.objects) {
    std::mt19937 object_rng = MakeRng(object.seed);
    object.draw(canvas, plan.layout.camera, object_rng);
  }
  if (ego_vehicle) {  // the hood, ignored like Cityscapes' "ego vehicle"
    const double w = size.width, h = size.height;
    const double e = h * UniformReal(finish_rng, 0.05, 0.09);
    canvas.Fill({{0, h + 1},
                 {w, h + 1},
                 {w, h - e * 0.5},
                 {w * 0.75, h - e},
                 {w * 0.25, h - e},
                 {0, h - e * 0.5}},
                scene::Jitter(finish_rng, {45, 45, 50}, 12), cityscapes::kIgnoreTrainId);
  }
  scene::ApplyCameraEffects(canvas, finish_rng);
  return StreetScene{canvas.image(), canvas.label()};
}

}  // namespace segqat::data
