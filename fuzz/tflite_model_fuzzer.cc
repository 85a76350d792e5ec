// The TFLite reader and the MobileFaceNet importer's walk of its graph: any bytes get a model or a status,
// never a crash; a model that parses names only tensors it has and holds constants of the sizes their shapes
// promise, and handing it to the importer gives a status too.

#include <cstdint>
#include <string_view>

#include "core/embed/mobilefacenet.h"
#include "core/tflite/tflite_model.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto model = veriface::TfliteModel::Parse(bytes, "fuzz.tflite");
  if (!model.ok()) return 0;
  const size_t tensors = model->tensors().size();
  for (const veriface::TfliteOperator& op : model->operators()) {
    for (const int32_t t : op.inputs) FUZZ_CHECK(t == -1 || (t >= 0 && static_cast<size_t>(t) < tensors), "input");
    for (const int32_t t : op.outputs) FUZZ_CHECK(t >= 0 && static_cast<size_t>(t) < tensors, "output");
  }
  for (const veriface::TfliteTensor& t : model->tensors()) {
    if (t.is_constant()) FUZZ_CHECK(t.value.sizes().vec() == t.shape, "a constant's values do not fill its shape");
  }
  veriface::MobileFaceNet net;
  (void)net.LoadFromTflite(*model);
  return 0;
}
