#include "engine/quant/codes_probe.h"

#include <utility>

namespace segqat::quant {
namespace {

thread_local CodesProbe probe;

}  // namespace

void SetCodesProbe(CodesProbe p) { probe = std::move(p); }

const CodesProbe* CurrentCodesProbe() { return probe ? &probe : nullptr; }

}  // namespace segqat::quant
