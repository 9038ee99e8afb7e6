// The objects of a synthetic street scene. Each function draws one object
// standing on the ground at (x, z) (metres, see scene_canvas.h): the
// silhouette with Canvas::Fill under the object's train id, and its details
// (windows, lamps, lights) painted inside that silhouette, so the label is
// exactly what is drawn. Thin parts are at least Canvas::MinStroke() wide.
//
// scene_street_furniture.cc: poles, traffic lights and signs, walls, fences.
// scene_vegetation.cc: trees, hedges. scene_vehicles.cc: cars, trucks, buses,
// trams. scene_people.cc: pedestrians, bicycles and motorcycles with or
// without riders.
#ifndef SEGQAT_ENGINE_DATA_SCENE_OBJECTS_H_
#define SEGQAT_ENGINE_DATA_SCENE_OBJECTS_H_

#include <random>

#include "engine/data/scene_canvas.h"

namespace segqat::data::scene {

// ---- Street furniture. `toward_road` is +1 when the road is at larger x.
enum class PoleKind { kPlain, kLamp, kTrafficLight, kTrafficLightArm, kSign };
void DrawPole(Canvas& canvas, const Camera& camera, std::mt19937& rng, PoleKind kind, double x,
              double z, int toward_road);
// A traffic light housing hanging below `top` (its top centre), lamps lit or
// seen from behind.
void DrawTrafficLight(Canvas& canvas, const Camera& camera, std::mt19937& rng, cv::Point3d top);
// A traffic sign plate of about `size` metres centred at `center`.
void DrawTrafficSign(Canvas& canvas, const Camera& camera, std::mt19937& rng, cv::Point3d center,
                     double size);
// Walls and fences run along the street in the plane x = const from z0 to z1.
void DrawWall(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z0,
              double z1, double height);
void DrawFence(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z0,
               double z1, double height);
// ---- Vegetation (scene_vegetation.cc). A tree: trunk and a canopy of
// overlapping discs, the canopy centred at canopy_y with radius canopy_r.
void DrawTree(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z,
              double canopy_y, double canopy_r);
// A hedge along the street in the plane x = const.
void DrawHedge(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z0,
               double z1, double height);

// ---- Vehicles: boxes aligned with the street, centred at x, from z0 to
// z0 + length. Oncoming vehicles show their front, others their rear.
enum class VehicleKind { kCar, kTruck, kBus, kTrain };
struct VehicleShape {
  double width = 1.8, length = 4.5, height = 1.5;
};
VehicleShape RandomVehicleShape(VehicleKind kind, std::mt19937& rng);
void DrawVehicle(Canvas& canvas, const Camera& camera, std::mt19937& rng, VehicleKind kind,
                 const VehicleShape& shape, double x, double z0, bool oncoming);

// ---- People. A pedestrian of the given height facing the camera.
void DrawPerson(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z,
                double height);
// A bicycle or motorcycle seen from the side (crossing, or parked across the
// sidewalk), heading to +x when direction is +1; with_rider adds a rider
// (train id rider) on it.
enum class CycleKind { kBicycle, kMotorcycle };
void DrawTwoWheeler(Canvas& canvas, const Camera& camera, std::mt19937& rng, CycleKind kind,
                    double x, double z, int direction, bool with_rider);

}  // namespace segqat::data::scene

#endif  // SEGQAT_ENGINE_DATA_SCENE_OBJECTS_H_
