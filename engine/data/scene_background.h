// The static part of a synthetic street scene: the street's cross-section,
// the sky, the ground (road with markings, sidewalks, grass verges) and the
// buildings along both sides and across the far end of the street.
#ifndef SEGQAT_ENGINE_DATA_SCENE_BACKGROUND_H_
#define SEGQAT_ENGINE_DATA_SCENE_BACKGROUND_H_

#include <random>

#include "engine/data/scene_canvas.h"

namespace segqat::data::scene {

// A straight street seen along its axis. x positions in metres; left < 0 < right.
struct StreetLayout {
  Camera camera;
  double road_left = -4, road_right = 4;        // curbs
  double walk_left = -7, walk_right = 7;        // outer edges of the sidewalks
  double facade_left = -9, facade_right = 9;    // building fronts
  bool grass_left = false, grass_right = true;  // verge between sidewalk and facade
  double strip_left = 0, strip_right = 0;       // grass strip between curb and sidewalk
  double near_z = 1.0;                          // the ground starts here
  double far_z = 150;                           // backdrop across the street end
  bool crosswalk = false;
  double crosswalk_z = 15;
  bool rails = false;  // tram rails centred at rails_x
  double rails_x = 0;

  // x of side's curb, sidewalk outer edge, facade; side is -1 (left) or +1.
  double Curb(int side) const { return side < 0 ? road_left : road_right; }
  double WalkEdge(int side) const { return side < 0 ? walk_left : walk_right; }
  double Facade(int side) const { return side < 0 ? facade_left : facade_right; }
  bool Grass(int side) const { return side < 0 ? grass_left : grass_right; }
  double Strip(int side) const { return side < 0 ? strip_left : strip_right; }
  // x where the paved sidewalk starts (after the grass strip, if any).
  double WalkInner(int side) const { return Curb(side) + side * Strip(side); }
};

// A random layout for an image of `size`: camera (focal length, horizon,
// vanishing point), road and sidewalk widths, verges, far end.
StreetLayout RandomLayout(cv::Size size, std::mt19937& rng);

// The sky: a vertical gradient, clear or overcast, with clouds. The canvas
// label is expected to start as sky.
void DrawSky(Canvas& canvas, const StreetLayout& layout, std::mt19937& rng);

// Everything on the ground plane below the horizon.
void DrawGround(Canvas& canvas, const StreetLayout& layout, std::mt19937& rng);

// Building rows along both facades and across the far end, with windows;
// gaps and far blocks show trees (vegetation). In scene_buildings.cc.
void DrawBuildings(Canvas& canvas, const StreetLayout& layout, std::mt19937& rng);

}  // namespace segqat::data::scene

#endif  // SEGQAT_ENGINE_DATA_SCENE_BACKGROUND_H_
