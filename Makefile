# The two commands of the README: `make run` and `make test`. Both install what is missing.
#   make build [PRESET=release|debug|asan] [CUDA=1] [NATIVE=0] [TARGETS="goose test_cuda"]
# CUDA=1 builds into its own folder (build-cuda, build-debug-cuda, ...) so the CPU build stays.
PRESET ?= release
CUDA ?= 0
# CUDA builds run on the GPU machine, whose CPU differs from this one: portable x86-64-v3 there.
NATIVE ?= $(if $(filter 1,$(CUDA)),0,1)
JOBS ?= $(shell nproc)
BUILD_DIR := $(if $(filter release,$(PRESET)),build,build-$(PRESET))$(if $(filter 1,$(CUDA)),-cuda)
CMAKE_FLAGS := -DGOOSE_CUDA=$(if $(filter 1,$(CUDA)),ON,OFF) -DGOOSE_NATIVE=$(if $(filter 1,$(NATIVE)),ON,OFF)
ifeq ($(CUDA)$(NATIVE),10)
CMAKE_FLAGS += -DCMAKE_CXX_FLAGS=-march=x86-64-v3
endif

.PHONY: deps build run test bench format clean
deps:
	@bash scripts/deps.sh

build: deps
	@cmake --preset $(PRESET) -B $(BUILD_DIR) $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) $(if $(TARGETS),--target $(TARGETS))

run: build
	./$(BUILD_DIR)/goose icl

test: build
	cd $(BUILD_DIR) && OMP_WAIT_POLICY=passive ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	./$(BUILD_DIR)/goose bench ops

format:
	clang-format -i $$(git ls-files '*.h' '*.cpp' '*.cu')

clean:
	rm -rf build build-debug build-asan build-cuda build-debug-cuda build-asan-cuda
