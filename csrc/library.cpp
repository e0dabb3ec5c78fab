// The rocq operator library: every schema in one TORCH_LIBRARY (the public contract; see
// ../shared/DESIGN.md), plus the Python module rocq._C that exposes the format table read from
// kernels/formats.h. Implementations register per device in cpu/ and cuda/.
#include <Python.h>
#include <torch/library.h>

#include "../kernels/formats.h"
#include "cpu/quantize_gguf.h"

TORCH_LIBRARY(rocq, m) {
  // y = x @ W^T (+ bias). x: [..., k] float32/float16/bfloat16; W is the [n, k] weight held in
  // `qtype`'s bytes (qweight uint8 [n, k/block_elems*block_bytes]; scales uint8 E8M0 [n, k/32]
  // for formats with a scale plane, None otherwise). y: [..., n] in x's dtype, accumulated in fp32.
  m.def("qmatmul(Tensor x, Tensor qweight, Tensor? scales, int qtype, SymInt n, SymInt k, Tensor? bias=None) -> Tensor");
  // W [n, k] in `dtype` (float32/float16/bfloat16), decoded bit-exactly (fp32 decode, then one
  // rounding to dtype).
  m.def("dequantize(Tensor qweight, Tensor? scales, int qtype, SymInt n, SymInt k, ScalarType dtype) -> Tensor");
  // w [n, k] (any float dtype) -> (qweight, scales). scales is an empty uint8 tensor for formats
  // that keep their scales in the blocks.
  m.def("quantize(Tensor w, int qtype) -> (Tensor qweight, Tensor scales)");
}

namespace {

// rocq._C.format_table() -> [(name, id, block_elems, block_bytes, scale_plane, can_quantize), ...]
PyObject* format_table(PyObject*, PyObject*) {
  PyObject* list = PyList_New(rocq::kNumFormats);
  if (!list) return nullptr;
  for (int i = 0; i < rocq::kNumFormats; ++i) {
    const rocq::FormatInfo& f = rocq::kFormats[i];
    PyObject* row = Py_BuildValue("(siiiOO)", f.name, f.id, f.block_elems, f.block_bytes,
                                  f.scale_plane ? Py_True : Py_False,
                                  rocq::cpu::can_quantize(f.id) ? Py_True : Py_False);
    if (!row) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, i, row);
  }
  return list;
}

// rocq._C.gpu_backend() -> "cuda", "hip" or "" (CPU-only build).
PyObject* gpu_backend(PyObject*, PyObject*) {
#if defined(ROCQ_BUILD_HIP)
  return PyUnicode_FromString("hip");
#elif defined(ROCQ_BUILD_CUDA)
  return PyUnicode_FromString("cuda");
#else
  return PyUnicode_FromString("");
#endif
}

PyMethodDef methods[] = {
    {"format_table", format_table, METH_NOARGS, "Formats compiled into rocq, read from kernels/formats.h."},
    {"gpu_backend", gpu_backend, METH_NOARGS, "The GPU backend this build contains ('cuda', 'hip' or '')."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "rocq operator library (ops register with torch.ops.rocq on import)",
                      -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__C() { return PyModule_Create(&module); }
