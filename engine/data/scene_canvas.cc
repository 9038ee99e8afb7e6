#include "engine/data/scene_canvas.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "engine/data/random.h"

namespace segqat::data::scene {
namespace {

// Sub-pixel precision of the drawing calls (coordinates in 1/16 pixel).
constexpr int kShift = 4;
constexpr double kOne = 1 << kShift;
// Far-off vertices are clamped so fixed-point coordinates cannot overflow.
constexpr double kMaxCoordinate = 1e5;

int Fixed(double v) {
  return static_cast<int>(std::lround(std::clamp(v, -kMaxCoordinate, kMaxCoordinate) * kOne));
}

cv::Point Fixed(cv::Point2d p) { return {Fixed(p.x), Fixed(p.y)}; }

double Clamp255(double v) { return std::clamp(v, 0.0, 255.0); }

}  // namespace

Polygon Project(const Camera& camera, const std::vector<cv::Point3d>& points) {
  Polygon polygon;
  polygon.reserve(points.size());
  for (const cv::Point3d& p : points) {
    polygon.push_back(camera.Project(p.x, p.y, std::max(p.z, 0.05)));
  }
  return polygon;
}

Polygon GroundQuad(const Camera& camera, double x0, double x1, double z0, double z1) {
  return Project(camera, {{x0, 0, z0}, {x1, 0, z0}, {x1, 0, z1}, {x0, 0, z1}});
}

Polygon SideQuad(const Camera& camera, double x, double z0, double z1, double y0, double y1) {
  return Project(camera, {{x, y0, z0}, {x, y0, z1}, {x, y1, z1}, {x, y1, z0}});
}

Polygon FrontQuad(const Camera& camera, double z, double x0, double x1, double y0, double y1) {
  return Project(camera, {{x0, y0, z}, {x1, y0, z}, {x1, y1, z}, {x0, y1, z}});
}

Canvas::Canvas(cv::Size size, uint8_t initial_class)
    : image_(size, CV_8UC3, cv::Scalar::all(0)), label_(size, CV_8UC1, cv::Scalar(initial_class)) {}

void Canvas::DrawPolygon(const Polygon& polygon, const Color& color, int class_id) {
  if (polygon.size() < 3) return;
  std::vector<cv::Point> points;
  points.reserve(polygon.size());
  for (const cv::Point2d& p : polygon) points.push_back(Fixed(p));
  const cv::Point* pts = points.data();
  const int npts = static_cast<int>(points.size());
  cv::fillPoly(image_, &pts, &npts, 1, color, cv::LINE_8, kShift);
  if (class_id >= 0) cv::fillPoly(label_, &pts, &npts, 1, cv::Scalar(class_id), cv::LINE_8, kShift);
}

void Canvas::DrawCircle(cv::Point2d center, double radius, const Color& color, int class_id) {
  const cv::Point c = Fixed(center);
  const int r = std::max(Fixed(radius), 1);
  cv::circle(image_, c, r, color, cv::FILLED, cv::LINE_8, kShift);
  if (class_id >= 0) cv::circle(label_, c, r, cv::Scalar(class_id), cv::FILLED, cv::LINE_8, kShift);
}

void Canvas::Fill(const Polygon& polygon, const Color& color, uint8_t class_id) {
  DrawPolygon(polygon, color, class_id);
}

void Canvas::Paint(const Polygon& polygon, const Color& color) { DrawPolygon(polygon, color, -1); }

void Canvas::FillCircle(cv::Point2d center, double radius, const Color& color, uint8_t class_id) {
  DrawCircle(center, radius, color, class_id);
}

void Canvas::PaintCircle(cv::Point2d center, double radius, const Color& color) {
  DrawCircle(center, radius, color, -1);
}

void Canvas::FillRing(cv::Point2d center, double radius, double width, const Color& color,
                      uint8_t class_id) {
  const int thickness = std::max(1, static_cast<int>(std::lround(width)));
  const cv::Point c = Fixed(center);
  const int r = std::max(Fixed(radius), 1);
  cv::circle(image_, c, r, color, thickness, cv::LINE_8, kShift);
  cv::circle(label_, c, r, cv::Scalar(class_id), thickness, cv::LINE_8, kShift);
}

void Canvas::FillLine(cv::Point2d a, cv::Point2d b, double width, const Color& color,
                      uint8_t class_id) {
  const cv::Point2d d = b - a;
  const double length = std::hypot(d.x, d.y);
  if (length < 1e-9) {
    DrawCircle(a, width / 2, color, class_id);
    return;
  }
  const cv::Point2d n(-d.y / length * width / 2, d.x / length * width / 2);
  DrawPolygon({a + n, b + n, b - n, a - n}, color, class_id);
}

void Canvas::PaintLine(cv::Point2d a, cv::Point2d b, double width, const Color& color) {
  const cv::Point2d d = b - a;
  const double length = std::hypot(d.x, d.y);
  if (length < 1e-9) return;
  const cv::Point2d n(-d.y / length * width / 2, d.x / length * width / 2);
  DrawPolygon({a + n, b + n, b - n, a - n}, color, -1);
}

Color Jitter(std::mt19937& rng, const Color& base, double amount) {
  return Color(Clamp255(base[0] + UniformReal(rng, -amount, amount)),
               Clamp255(base[1] + UniformReal(rng, -amount, amount)),
               Clamp255(base[2] + UniformReal(rng, -amount, amount)));
}

Color Shade(const Color& color, double factor) {
  return Color(Clamp255(color[0] * factor), Clamp255(color[1] * factor),
               Clamp255(color[2] * factor));
}

Color Mix(const Color& a, const Color& b, double t) {
  return Color(Clamp255(a[0] + (b[0] - a[0]) * t), Clamp255(a[1] + (b[1] - a[1]) * t),
               Clamp255(a[2] + (b[2] - a[2]) * t));
}

}  // namespace segqat::data::scene
