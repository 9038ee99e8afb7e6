// One synthetic Cityscapes-like street scene: an RGB image and its train-id
// label, rendered together (see synthetic.h for the dataset built from them).
//
// A scene is a straight street in perspective: sky, buildings with windows
// along both sides and across the far end, road with lane markings,
// sidewalks, grass verges, trees and hedges, walls and fences, poles with
// lamps, traffic lights and signs, cars, trucks, buses and trams, pedestrians,
// and riders on bicycles and motorcycles. Colours vary per instance, classes
// carry textures, and the whole image gets brightness/contrast/colour jitter,
// noise and sometimes blur, so colour alone does not tell the classes apart.
// Some scenes show the ego vehicle's hood at the bottom, labelled 255.
#ifndef SEGQAT_ENGINE_DATA_STREET_SCENE_H_
#define SEGQAT_ENGINE_DATA_STREET_SCENE_H_

#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

namespace segqat::data {

struct StreetScene {
  cv::Mat image;  // CV_8UC3, RGB
  cv::Mat label;  // CV_8UC1, Cityscapes train ids 0..18, 255 for the ego vehicle
};

// Renders the scene for `seed` at `size` (the layout scales with the image;
// designed for 2:1 images from 128x256 up). `required` lists train ids of the
// rarer classes (wall, fence, truck, bus, train, rider, motorcycle, bicycle)
// that must appear: they are placed where they stay visible. The result
// depends only on the arguments.
// REQUIRES: size.width >= 32 and size.height >= 16.
StreetScene RenderStreetScene(cv::Size size, uint64_t seed, const std::vector<uint8_t>& required);

}  // namespace segqat::data

#endif  // SEGQAT_ENGINE_DATA_STREET_SCENE_H_
