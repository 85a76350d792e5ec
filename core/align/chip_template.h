#pragma once
// Which face template a backbone's chips are aligned to: each network was trained on chips cut one way,
// and embeds well only chips cut the same way.

namespace veriface {

enum class ChipTemplate {
  kDlib,     // dlib's mean face with 25% padding (the dlib ResNet's 150x150 chips; the project's own backbones)
  kArcFace,  // InsightFace's five-point 112x112 template (ArcFace, MobileFaceNet and their kin)
};

}  // namespace veriface
