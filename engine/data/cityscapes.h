// Facts about the Cityscapes dataset: the 19 evaluation ("train") classes,
// their official colour palette, and the official mapping between the 34
// annotation label ids (the *_labelIds.png files) and the train ids
// (the *_labelTrainIds.png files, which the networks are trained on).
//
// Everything here is a constant or a pure function; safe from any thread.
#ifndef SEGQAT_ENGINE_DATA_CITYSCAPES_H_
#define SEGQAT_ENGINE_DATA_CITYSCAPES_H_

#include <array>
#include <cstdint>

namespace segqat::data::cityscapes {

inline constexpr int kNumClasses = 19;
// Train id of every pixel that is not one of the 19 classes.
inline constexpr uint8_t kIgnoreTrainId = 255;
// Label id written for kIgnoreTrainId by TrainIdToLabelIdLut ("unlabeled").
inline constexpr uint8_t kUnlabeledLabelId = 0;

// Train ids, in the official order.
enum TrainId : uint8_t {
  kRoad = 0,
  kSidewalk = 1,
  kBuilding = 2,
  kWall = 3,
  kFence = 4,
  kPole = 5,
  kTrafficLight = 6,
  kTrafficSign = 7,
  kVegetation = 8,
  kTerrain = 9,
  kSky = 10,
  kPerson = 11,
  kRider = 12,
  kCar = 13,
  kTruck = 14,
  kBus = 15,
  kTrain = 16,
  kMotorcycle = 17,
  kBicycle = 18,
};

// Class names indexed by train id.
inline constexpr std::array<const char*, kNumClasses> kClassNames = {
    "road",         "sidewalk",   "building", "wall",       "fence",  "pole",  "traffic light",
    "traffic sign", "vegetation", "terrain",  "sky",        "person", "rider", "car",
    "truck",        "bus",        "train",    "motorcycle", "bicycle"};

// Official colours (R, G, B) indexed by train id.
inline constexpr std::array<std::array<uint8_t, 3>, kNumClasses> kPalette = {{
    {128, 64, 128},   // road
    {244, 35, 232},   // sidewalk
    {70, 70, 70},     // building
    {102, 102, 156},  // wall
    {190, 153, 153},  // fence
    {153, 153, 153},  // pole
    {250, 170, 30},   // traffic light
    {220, 220, 0},    // traffic sign
    {107, 142, 35},   // vegetation
    {152, 251, 152},  // terrain
    {70, 130, 180},   // sky
    {220, 20, 60},    // person
    {255, 0, 0},      // rider
    {0, 0, 142},      // car
    {0, 0, 70},       // truck
    {0, 60, 100},     // bus
    {0, 80, 100},     // train
    {0, 0, 230},      // motorcycle
    {119, 11, 32},    // bicycle
}};

// Label id of each train id (road is label id 7, ..., bicycle 33).
inline constexpr std::array<uint8_t, kNumClasses> kTrainIdToLabelId = {
    7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33};

// A 256-entry lookup table: label id -> train id. The 19 evaluated label ids
// map to 0..18; every other value (unlabeled, ego vehicle, parking, rail
// track, guard rail, caravan, trailer, ... and 34..255) maps to 255.
std::array<uint8_t, 256> LabelIdToTrainIdLut();

// The inverse: train ids 0..18 -> their label ids; every other value
// (including 255) -> kUnlabeledLabelId.
std::array<uint8_t, 256> TrainIdToLabelIdLut();

}  // namespace segqat::data::cityscapes

#endif  // SEGQAT_ENGINE_DATA_CITYSCAPES_H_
