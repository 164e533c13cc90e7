# libmcnn build.  Switches: OPENMP=0|1 (default 1), SANITIZE=1 (address,undefined), NATIVE=1
# (-march=native), DEBUG=1 (-O0 -g, internal asserts), MPI=1 (also mcnn-train over Open MPI,
# as build/mpi/mcnn-train next to the plain one; needs mpicc: Debian's libopenmpi-dev).  Each switch combination builds into its
# own folder under build/, so switching never mixes objects; the default is build/ itself.
CC      ?= cc
OPENMP  ?= 1
SANITIZE ?= 0
NATIVE  ?= 0
DEBUG   ?= 0
MPI     ?= 0

BUILD := build
ifeq ($(OPENMP),0)
  BUILD := $(BUILD)/noomp
endif
ifeq ($(SANITIZE),1)
  BUILD := $(BUILD)/sanitize
endif
ifeq ($(NATIVE),1)
  BUILD := $(BUILD)/native
endif
ifeq ($(DEBUG),1)
  BUILD := $(BUILD)/debug
endif

CFLAGS  := -std=c11 -Wall -Wextra -fPIC -fvisibility=hidden -MMD -MP -Iinclude -Ilib
LDLIBS  := -lm
ifeq ($(DEBUG),1)
  CFLAGS += -O0 -g -DMCNN_DEBUG
else
  CFLAGS += -O3 -g
endif
ifeq ($(OPENMP),1)
  CFLAGS  += -fopenmp
  LDFLAGS += -fopenmp
else
  CFLAGS  += -fopenmp-simd
endif
ifeq ($(SANITIZE),1)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(NATIVE),1)
  CFLAGS += -march=native
endif

LIB_SRC   := $(sort $(wildcard lib/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
APP_COMMON_SRC := $(sort $(wildcard apps/common/*.c))
APP_COMMON_OBJ := $(APP_COMMON_SRC:%.c=$(BUILD)/obj/%.o)
# The trainer's collectives: one process (apps/common/distributed_single.c) or, with MPI=1,
# Open MPI (apps/mpi/distributed_mpi.c) for mcnn-train only; the library never links MPI.
ifeq ($(MPI),1)
  MPI_CFLAGS := $(shell mpicc --showme:compile)
  MPI_LIBS   := $(shell mpicc --showme:link)
  ifeq ($(MPI_LIBS),)
    $(error MPI=1 needs mpicc (Debian: apt-get install libopenmpi-dev openmpi-bin))
  endif
  MPI_TRAIN_OBJ := $(filter-out %/distributed_single.o,$(APP_COMMON_OBJ)) \
                   $(BUILD)/obj/apps/mpi/distributed_mpi.o
endif
APP_SRC   := $(sort $(wildcard apps/*.c))
APPS      := $(APP_SRC:apps/%.c=$(BUILD)/mcnn-%)
ifeq ($(MPI),1)
  APPS += $(BUILD)/mpi/mcnn-train
endif
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TESTS     := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCHES   := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

# OpenBLAS is used only by the benchmarks, and only when it is installed.
OPENBLAS_LIB := $(firstword $(wildcard /usr/lib/*/libopenblas.so /usr/lib/libopenblas.so))
ifneq ($(OPENBLAS_LIB),)
  BENCH_BLAS := -DMCNN_BENCH_OPENBLAS -lopenblas
endif

.PHONY: all test test-full bench clean
# Keep the apps' object files (make would delete them as intermediates and rebuild each time).
.SECONDARY:
all: $(BUILD)/libmcnn.a $(BUILD)/libmcnn.so $(APPS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libmcnn.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libmcnn.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mcnn-%: $(BUILD)/obj/apps/%.o $(APP_COMMON_OBJ) $(BUILD)/libmcnn.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ifeq ($(MPI),1)
$(BUILD)/obj/apps/mpi/%.o: apps/mpi/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -c $< -o $@

$(BUILD)/mpi/mcnn-train: $(BUILD)/obj/apps/train.o $(MPI_TRAIN_OBJ) $(BUILD)/libmcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(MPI_LIBS) $(LDLIBS)
endif

$(BUILD)/tests/%: tests/%.c tests/mcnn_test.h $(BUILD)/libmcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(BUILD)/libmcnn.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libmcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmcnn.a $(BENCH_BLAS) $(LDLIBS)

# Runs every test binary (apps first built, since some tests drive them) and sums the counts.
test: all $(TESTS)
	@sh tests/run.sh $(BUILD)

# Full-size models too (ViT-B/16, ResNet-50, CLIP ViT-B/32, random weights, official key names),
# compared with PyTorch's logits when Debian's python3-torch is installed.  Slow: not in `test`.
MCNN_FULL_DIR ?= $(BUILD)/full
test-full: all $(TESTS)
	@if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then \
	  MCNN_FULL_DIR=$(MCNN_FULL_DIR) /usr/bin/python3 tests/ref/gen_full_size.py; \
	else echo "python3-torch is not installed: full-size models are checked for shape and finiteness only"; fi
	@MCNN_TEST_FULL=1 MCNN_FULL_DIR=$(MCNN_FULL_DIR) sh tests/run.sh $(BUILD)

bench: $(BENCHES)

# A small ResNet and a small ViT trained from scratch on Fashion-MNIST, with their test accuracy
# and time (docs/demo.md).  Needs Debian's dataset-fashion-mnist.
.PHONY: demo
demo: $(BUILD)/mcnn-train
	@sh weights/train-demo.sh $(BUILD)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(APP_COMMON_OBJ:.o=.d)
