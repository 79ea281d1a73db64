// Tensor: a strided view (shape, strides in elements, offset) of reference-counted storage.
// Up to 5 dims; any dtype of dtype.h; CPU or CUDA. Views share storage; ops make new tensors.
// A default-constructed Tensor is "undefined" (no storage), used for "no gradient" and options.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "goose/core/device.h"
#include "goose/core/dtype.h"
#include "goose/core/error.h"
#include "goose/core/shape.h"
#include "goose/core/storage.h"

namespace goose {

class Rng;

class Tensor {
public:
    Tensor() = default;

    // ---- factories (CPU unless a device is given) ----
    static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device dev = Device::cpu());
    static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device dev = Device::cpu());
    static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                       Device dev = Device::cpu());
    static Tensor scalar(double value, DType dtype = DType::f32);  // 0-d
    // Copies `values` (converted to dtype) into a new tensor; sizes must match.
    static Tensor from(const Shape& shape, std::span<const double> values,
                       DType dtype = DType::f32);
    static Tensor from(const Shape& shape, std::initializer_list<double> values,
                       DType dtype = DType::f32);
    static Tensor arange(int64_t n, DType dtype = DType::f32);
    // Samples (float dtypes only), reproducible for a given Rng state and independent of threads.
    static Tensor randn(const Shape& shape, Rng& rng, DType dtype = DType::f32, double mean = 0,
                        double std = 1);
    static Tensor uniform(const Shape& shape, Rng& rng, DType dtype = DType::f32, double lo = 0,
                          double hi = 1);
    // Wraps existing storage.
    Tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Strides& strides,
           int64_t offset, DType dtype);

    // ---- metadata ----
    bool defined() const { return storage_ != nullptr; }
    const Shape& shape() const { return shape_; }
    const Strides& strides() const { return strides_; }
    int ndim() const { return shape_.ndim(); }
    int64_t size(int dim) const { return shape_.dim(dim); }  // negative counts from the end
    int64_t numel() const { return shape_.numel(); }
    int64_t offset() const { return offset_; }
    DType dtype() const { return dtype_; }
    Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
    bool is_contiguous() const;
    const std::shared_ptr<Storage>& storage() const { return storage_; }
    bool shares_storage(const Tensor& o) const { return storage_ == o.storage_; }
    std::string desc() const;  // "f32[2, 3] cpu"

    // ---- raw access (CPU) ----
    void* raw_data() const;  // address of element 0 of this view
    template <class T>
    T* data() const {
        check_data_access(dtype_of<T>::value);
        return static_cast<T*>(raw_data());
    }
    // Reads/writes one element by index (any dtype, as double). Slow: for tests and debugging.
    double get(std::initializer_list<int64_t> index) const;
    void set(std::initializer_list<int64_t> index, double value);
    double item() const;                 // the single element of a 1-element tensor
    std::vector<double> to_vector() const;  // all elements in row-major order, as double

    // ---- views (share storage) ----
    Tensor view(const Shape& shape) const;     // contiguous only; one size may be -1
    Tensor reshape(const Shape& shape) const;  // a view when possible, else a contiguous copy
    Tensor transpose(int a, int b) const;
    Tensor permute(std::span<const int> order) const;
    Tensor permute(std::initializer_list<int> order) const {
        return permute(std::span<const int>(order.begin(), order.size()));
    }
    Tensor slice(int dim, int64_t start, int64_t end, int64_t step = 1) const;
    Tensor select(int dim, int64_t index) const;  // drops the dimension
    Tensor unsqueeze(int dim) const;
    Tensor squeeze(int dim) const;
    Tensor expand(const Shape& shape) const;  // broadcast view (stride 0 on expanded dims)

    // ---- copies ----
    Tensor contiguous() const;  // this if already contiguous, else a packed copy
    Tensor clone() const;       // always a packed copy
    Tensor to(DType dtype) const;  // converted packed copy (this if already dtype & contiguous)
    Tensor to(Device dev) const;
    void copy_(const Tensor& src);  // element-wise copy (dtype conversion, same shape)
    void fill_(double value);
    void zero_() { fill_(0.0); }

private:
    void check_data_access(DType t) const;

    std::shared_ptr<Storage> storage_;
    Shape shape_;
    Strides strides_;
    int64_t offset_ = 0;
    DType dtype_ = DType::f32;
};

// Copies src into dst element by element (same shape; any strides; any dtypes; CPU).
void copy_strided(const Tensor& dst, const Tensor& src);

}  // namespace goose
