// Drawing primitives for the synthetic street scenes (synthetic.h): a pinhole
// camera over a flat ground, and a canvas that paints an RGB image and its
// train-id label with the same primitives, so the label is exactly what is
// drawn.
//
// World coordinates are metres: x to the right, y up from the ground, z away
// from the camera. Not thread-safe (a Canvas is owned by one renderer).
#ifndef SEGQAT_ENGINE_DATA_SCENE_CANVAS_H_
#define SEGQAT_ENGINE_DATA_SCENE_CANVAS_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <opencv2/core.hpp>
#include <random>
#include <vector>

#include "engine/data/random.h"

namespace segqat::data::scene {

using Polygon = std::vector<cv::Point2d>;
using Color = cv::Scalar;  // R, G, B in 0..255

struct Camera {
  double focal = 500;    // pixels per metre at 1 m depth
  double cx = 256;       // column of the vanishing point
  double horizon = 110;  // row of the horizon
  double height = 1.3;   // metres above the ground

  // Image position of world point (x, y, z). REQUIRES: z > 0.
  cv::Point2d Project(double x, double y, double z) const {
    return {cx + focal * x / z, horizon + focal * (height - y) / z};
  }
  cv::Point2d Project(const cv::Point3d& p) const { return Project(p.x, p.y, p.z); }
  // Pixels per metre at depth z.
  double Scale(double z) const { return focal / z; }
  // Depth of the ground seen at image row `row` (> horizon).
  double GroundDepthAtRow(double row) const { return focal * height / (row - horizon); }
};

// Projects each world point.
Polygon Project(const Camera& camera, const std::vector<cv::Point3d>& points);

// Projected rectangles: on the ground (x in [x0, x1], z in [z0, z1]); in the
// vertical plane x = const (a facade, a vehicle side); in the vertical plane
// z = const (anything facing the camera).
Polygon GroundQuad(const Camera& camera, double x0, double x1, double z0, double z1);
Polygon SideQuad(const Camera& camera, double x, double z0, double z1, double y0, double y1);
Polygon FrontQuad(const Camera& camera, double z, double x0, double x1, double y0, double y1);

class Canvas {
 public:
  // An image filled with black and a label filled with `initial_class`.
  Canvas(cv::Size size, uint8_t initial_class);

  cv::Size size() const { return image_.size(); }
  // The thinnest stroke worth drawing for a thin object (a pole, a bicycle
  // frame): it stays visible when the image is downscaled 2x.
  double MinStroke() const { return std::max(1.5, image_.cols / 128.0); }
  cv::Mat& image() { return image_; }  // CV_8UC3, RGB
  cv::Mat& label() { return label_; }  // CV_8UC1, train ids

  // Fill* paints the image with `color` and the label with `class_id`.
  // Paint* changes only the image: markings and texture on a region the caller
  // has already labelled, which must lie inside that region.
  void Fill(const Polygon& polygon, const Color& color, uint8_t class_id);
  void Paint(const Polygon& polygon, const Color& color);
  void FillCircle(cv::Point2d center, double radius, const Color& color, uint8_t class_id);
  void PaintCircle(cv::Point2d center, double radius, const Color& color);
  // A ring (circle outline) of the given stroke width in pixels.
  void FillRing(cv::Point2d center, double radius, double width, const Color& color,
                uint8_t class_id);
  // A straight stroke of the given width in pixels (a thin quad).
  void FillLine(cv::Point2d a, cv::Point2d b, double width, const Color& color, uint8_t class_id);
  void PaintLine(cv::Point2d a, cv::Point2d b, double width, const Color& color);

 private:
  void DrawPolygon(const Polygon& polygon, const Color& color, int class_id);
  void DrawCircle(cv::Point2d center, double radius, const Color& color, int class_id);

  cv::Mat image_;
  cv::Mat label_;
};

// Colour helpers. Components are clamped to [0, 255].
Color Jitter(std::mt19937& rng, const Color& base, double amount);  // per channel +-amount
Color Shade(const Color& color, double factor);                     // brightness
Color Mix(const Color& a, const Color& b, double t);                // (1-t) a + t b

// A colour constant for constexpr tables.
struct Rgb {
  double r, g, b;
  Color ToColor() const { return Color(r, g, b); }
};

// One of `choices`, uniformly.
template <size_t N>
Color Pick(std::mt19937& rng, const std::array<Rgb, N>& choices) {
  return choices[UniformInt(rng, static_cast<int>(N))].ToColor();
}

}  // namespace segqat::data::scene

#endif  // SEGQAT_ENGINE_DATA_SCENE_CANVAS_H_
