// Tensor: factories, views and copies.
#include "goose/core/tensor.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/strided_copy.h"
#ifdef GOOSE_CUDA
#include "core/cuda/cuda_internal.h"
#endif
#include "goose/core/element.h"
#include "goose/core/rng.h"

namespace goose {

Tensor::Tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Strides& strides,
               int64_t offset, DType dtype)
    : storage_(std::move(storage)),
      shape_(shape),
      strides_(strides),
      offset_(offset),
      dtype_(dtype) {
    GOOSE_ASSERT(shape.ndim() == strides.ndim());
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device dev) {
    for (int i = 0; i < shape.ndim(); ++i)
        if (shape[i] < 0)
            fail("cannot create a tensor of shape {}: sizes must be >= 0", shape.str());
    const int64_t n = shape.numel();
    constexpr int64_t kMaxBytes = int64_t(1) << 40;  // 1 TiB: anything larger is a bad size
    if (n > kMaxBytes / static_cast<int64_t>(dtype_size(dtype)))
        fail("cannot create a tensor of shape {} ({}): {} elements is absurdly large", shape.str(),
             dtype_name(dtype), n);
    auto st = Storage::allocate(static_cast<size_t>(n) * dtype_size(dtype), dev);
    return Tensor(std::move(st), shape, contiguous_strides(shape), 0, dtype);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device dev) {
    Tensor t = empty(shape, dtype, dev);
    t.fill_(0.0);
    return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device dev) {
    Tensor t = empty(shape, dtype, dev);
    t.fill_(value);
    return t;
}

Tensor Tensor::scalar(double value, DType dtype) {
    return full(Shape{}, value, dtype);
}

Tensor Tensor::from(const Shape& shape, std::span<const double> values, DType dtype) {
    if (static_cast<int64_t>(values.size()) != shape.numel())
        fail("Tensor::from: shape {} needs {} values, got {}", shape.str(), shape.numel(),
             values.size());
    Tensor t = empty(shape, dtype);
    void* p = t.raw_data();
    for (size_t i = 0; i < values.size(); ++i)
        store_from_double(p, dtype, static_cast<int64_t>(i), values[i]);
    return t;
}

Tensor Tensor::from(const Shape& shape, std::initializer_list<double> values, DType dtype) {
    return from(shape, std::span<const double>(values.begin(), values.size()), dtype);
}

Tensor Tensor::arange(int64_t n, DType dtype) {
    Tensor t = empty(Shape{n}, dtype);
    for (int64_t i = 0; i < n; ++i)
        store_from_double(t.raw_data(), dtype, i, static_cast<double>(i));
    return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng, DType dtype, double mean, double std) {
    if (!dtype_is_float(dtype))
        fail("Tensor::randn: dtype must be a float type, got {}", dtype_name(dtype));
    Tensor t = empty(shape, DType::f64);
    rng.fill_normal(std::span<double>(t.data<double>(), static_cast<size_t>(t.numel())), mean, std);
    return dtype == DType::f64 ? t : t.to(dtype);
}

Tensor Tensor::uniform(const Shape& shape, Rng& rng, DType dtype, double lo, double hi) {
    if (!dtype_is_float(dtype))
        fail("Tensor::uniform: dtype must be a float type, got {}", dtype_name(dtype));
    Tensor t = empty(shape, DType::f64);
    rng.fill_uniform(std::span<double>(t.data<double>(), static_cast<size_t>(t.numel())), lo, hi);
    return dtype == DType::f64 ? t : t.to(dtype);
}

bool Tensor::is_contiguous() const {
    int64_t expect = 1;
    for (int i = ndim() - 1; i >= 0; --i) {
        if (shape_[i] != 1 && strides_[i] != expect) return false;
        expect *= shape_[i];
    }
    return true;
}

std::string Tensor::desc() const {
    if (!defined()) return "undefined";
    return fmt::format("{}{} {}", dtype_name(dtype_), shape_.str(), device().str());
}

void* Tensor::raw_data() const {
    if (!storage_) fail("access to an undefined tensor");
    return static_cast<char*>(storage_->data()) +
           offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

void Tensor::check_data_access(DType t) const {
    if (!defined()) fail("access to an undefined tensor");
    if (t != dtype_) fail("tensor {} accessed as {}", desc(), dtype_name(t));
    if (!device().is_cpu())
        fail("tensor {} is not on the CPU; copy it with .to(Device::cpu())", desc());
}

double Tensor::get(std::initializer_list<int64_t> index) const {
    GOOSE_ASSERT(static_cast<int>(index.size()) == ndim(), "index rank");
    int64_t o = 0;
    int d = 0;
    for (int64_t i : index) {
        GOOSE_ASSERT(i >= 0 && i < shape_[d], "index {} out of range in dim {}", i, d);
        o += i * strides_[d++];
    }
    if (!device().is_cpu())  // one element through a 0-d view
        return Tensor(storage_, Shape{}, Strides{}, offset_ + o, dtype_).to(Device::cpu()).item();
    return load_as_double(raw_data(), dtype_, o);
}

void Tensor::set(std::initializer_list<int64_t> index, double value) {
    GOOSE_ASSERT(static_cast<int>(index.size()) == ndim(), "index rank");
    int64_t o = 0;
    int d = 0;
    for (int64_t i : index) {
        GOOSE_ASSERT(i >= 0 && i < shape_[d], "index {} out of range in dim {}", i, d);
        o += i * strides_[d++];
    }
    if (!device().is_cpu()) {
        Tensor(storage_, Shape{}, Strides{}, offset_ + o, dtype_).fill_(value);
        return;
    }
    store_from_double(raw_data(), dtype_, o, value);
}

double Tensor::item() const {
    if (numel() != 1) fail("item(): tensor {} has {} elements, not 1", desc(), numel());
    if (!device().is_cpu()) return to(Device::cpu()).item();
    int64_t idx[kMaxDims] = {0, 0, 0, 0, 0};
    return load_as_double(raw_data(), dtype_, offset_of(idx, strides_));
}

std::vector<double> Tensor::to_vector() const {
    if (!device().is_cpu()) return to(Device::cpu()).to_vector();
    std::vector<double> v;
    v.reserve(static_cast<size_t>(numel()));
    const void* p = raw_data();
    for_each_index(shape_, [&](const int64_t* idx) {
        v.push_back(load_as_double(p, dtype_, offset_of(idx, strides_)));
    });
    return v;
}

// ---- views -----------------------------------------------------------------------------------

Tensor Tensor::view(const Shape& shape) const {
    Shape s = shape;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < s.ndim(); ++i) {
        if (s[i] == -1) {
            if (infer >= 0) fail("view: only one size may be -1, got {}", shape.str());
            infer = i;
        } else {
            known *= s[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || numel() % known != 0)
            fail("view: cannot view {} as {}", desc(), shape.str());
        s[infer] = numel() / known;
    }
    if (s.numel() != numel())
        fail("view: cannot view {} ({} elements) as {} ({} elements)", desc(), numel(), s.str(),
             s.numel());
    if (!is_contiguous()) fail("view: tensor {} is not contiguous; use reshape()", desc());
    return Tensor(storage_, s, contiguous_strides(s), offset_, dtype_);
}

Tensor Tensor::reshape(const Shape& shape) const {
    return is_contiguous() ? view(shape) : contiguous().view(shape);
}

Tensor Tensor::transpose(int a, int b) const {
    a = normalize_axis(a, ndim(), "transpose");
    b = normalize_axis(b, ndim(), "transpose");
    Tensor t = *this;
    std::swap(t.shape_[a], t.shape_[b]);
    std::swap(t.strides_[a], t.strides_[b]);
    return t;
}

Tensor Tensor::permute(std::span<const int> order) const {
    if (static_cast<int>(order.size()) != ndim())
        fail("permute: order has {} entries for a {}-d tensor", order.size(), ndim());
    bool seen[kMaxDims] = {};
    Tensor t = *this;
    for (int i = 0; i < ndim(); ++i) {
        const int o = normalize_axis(order[static_cast<size_t>(i)], ndim(), "permute");
        if (seen[o]) fail("permute: axis {} repeated", o);
        seen[o] = true;
        t.shape_[i] = shape_[o];
        t.strides_[i] = strides_[o];
    }
    return t;
}

Tensor Tensor::slice(int dim, int64_t start, int64_t end, int64_t step) const {
    dim = normalize_axis(dim, ndim(), "slice");
    const int64_t n = shape_[dim];
    if (step <= 0) fail("slice: step must be positive, got {}", step);
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = std::clamp<int64_t>(start, 0, n);
    end = std::clamp<int64_t>(end, start, n);
    Tensor t = *this;
    t.offset_ += start * strides_[dim];
    t.shape_[dim] = (end - start + step - 1) / step;
    t.strides_[dim] = strides_[dim] * step;
    return t;
}

Tensor Tensor::select(int dim, int64_t index) const {
    dim = normalize_axis(dim, ndim(), "select");
    if (index < 0) index += shape_[dim];
    if (index < 0 || index >= shape_[dim])
        fail("select: index {} out of range for dim {} of {}", index, dim, desc());
    Tensor t = *this;
    t.offset_ += index * strides_[dim];
    t.shape_ = shape_.without(dim);
    t.strides_ = strides_.without(dim);
    return t;
}

Tensor Tensor::unsqueeze(int dim) const {
    if (dim < 0) dim += ndim() + 1;
    if (dim < 0 || dim > ndim()) fail("unsqueeze: dim out of range for {}", desc());
    Tensor t = *this;
    const int64_t st = dim < ndim() ? strides_[dim] * shape_[dim] : 1;
    t.shape_ = shape_.with_inserted(dim, 1);
    t.strides_ = strides_.with_inserted(dim, st);
    return t;
}

Tensor Tensor::squeeze(int dim) const {
    dim = normalize_axis(dim, ndim(), "squeeze");
    if (shape_[dim] != 1)
        fail("squeeze: dim {} of {} has size {}, not 1", dim, desc(), shape_[dim]);
    Tensor t = *this;
    t.shape_ = shape_.without(dim);
    t.strides_ = strides_.without(dim);
    return t;
}

Tensor Tensor::expand(const Shape& shape) const {
    if (shape.ndim() < ndim()) fail("expand: cannot expand {} to {}", desc(), shape.str());
    Tensor t = *this;
    t.shape_ = shape;
    t.strides_ = shape;
    const int lead = shape.ndim() - ndim();
    for (int i = 0; i < shape.ndim(); ++i) {
        const int j = i - lead;
        if (j < 0) {
            t.strides_[i] = 0;
        } else if (shape_[j] == shape[i]) {
            t.strides_[i] = strides_[j];
        } else if (shape_[j] == 1) {
            t.strides_[i] = 0;
        } else {
            fail("expand: cannot expand {} to {}", desc(), shape.str());
        }
    }
    return t;
}

// ---- copies ----------------------------------------------------------------------------------

void copy_strided(const Tensor& dst, const Tensor& src) {
    if (dst.shape() != src.shape())
        fail("copy: shapes differ: destination {}, source {}", dst.desc(), src.desc());
    if (!dst.device().is_cpu() || !src.device().is_cpu()) {
#ifdef GOOSE_CUDA
        cuda_detail::copy_strided(dst, src);
        return;
#else
        fail("copy: {} -> {} needs the CUDA backend (rebuild with `make build CUDA=1`)",
             src.desc(), dst.desc());
#endif
    }
    if (dst.numel() == 0) return;
    if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
        std::memmove(dst.raw_data(), src.raw_data(), dst.nbytes());
        return;
    }
    const void* sp = src.raw_data();
    void* dp = dst.raw_data();
    const DType sd = src.dtype(), dd = dst.dtype();
    if (sd == dd) {  // same dtype: the blocked copy, by element size
        const Shape& sh = dst.shape();
        switch (dtype_size(sd)) {
            case 1:
                detail::copy_typed(static_cast<uint8_t*>(dp), static_cast<const uint8_t*>(sp), sh,
                                   dst.strides(), src.strides());
                return;
            case 2:
                detail::copy_typed(static_cast<uint16_t*>(dp), static_cast<const uint16_t*>(sp), sh,
                                   dst.strides(), src.strides());
                return;
            case 4:
                detail::copy_typed(static_cast<uint32_t*>(dp), static_cast<const uint32_t*>(sp), sh,
                                   dst.strides(), src.strides());
                return;
            case 8:
                detail::copy_typed(static_cast<uint64_t*>(dp), static_cast<const uint64_t*>(sp), sh,
                                   dst.strides(), src.strides());
                return;
        }
    }
    for_each_index(dst.shape(), [&](const int64_t* idx) {
        store_from_double(dp, dd, offset_of(idx, dst.strides()),
                          load_as_double(sp, sd, offset_of(idx, src.strides())));
    });
}

Tensor Tensor::contiguous() const {
    if (is_contiguous()) return *this;
    return clone();
}

Tensor Tensor::clone() const {
    Tensor t = empty(shape_, dtype_, device());
    copy_strided(t, *this);
    return t;
}

Tensor Tensor::to(DType dtype) const {
    if (dtype == dtype_ && is_contiguous()) return *this;
    Tensor t = empty(shape_, dtype, device());
    copy_strided(t, *this);
    return t;
}

Tensor Tensor::to(Device dev) const {
    if (dev == device()) return *this;
    Tensor t = empty(shape_, dtype_, dev);  // fails clearly without a CUDA backend or device
    copy_strided(t, *this);
    return t;
}

void Tensor::copy_(const Tensor& src) {
    copy_strided(*this, src);
}

void Tensor::fill_(double value) {
    if (!device().is_cpu()) {
#ifdef GOOSE_CUDA
        cuda_detail::fill(*this, value);
        return;
#else
        fail("fill_ of {} needs the CUDA backend", desc());
#endif
    }
    if (numel() == 0) return;
    void* p = raw_data();
    if (is_contiguous() && dtype_ == DType::f32) {
        std::fill_n(static_cast<float*>(p), numel(), static_cast<float>(value));
        return;
    }
    if (is_contiguous() && dtype_ == DType::f64) {
        std::fill_n(static_cast<double*>(p), numel(), value);
        return;
    }
    for_each_index(shape_, [&](const int64_t* idx) {
        store_from_double(p, dtype_, offset_of(idx, strides_), value);
    });
}

}  // namespace goose
