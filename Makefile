# libmcnn build.  Switches: OPENMP=0|1 (default 1), SANITIZE=1 (address,undefined), NATIVE=1
# (-march=native), DEBUG=1 (-O0 -g, internal asserts).  Each switch combination builds into its
# own folder under build/, so switching never mixes objects; the default is build/ itself.
# `make install PREFIX=/usr/local DESTDIR=` installs that build; `make uninstall` removes it.
CC      ?= cc
OPENMP  ?= 1
SANITIZE ?= 0
NATIVE  ?= 0
DEBUG   ?= 0

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

# The version lives in include/mcnn/core.h only; the shared library is named after it.
version_part = $(shell sed -n 's/^\#define MCNN_VERSION_$(1) \([0-9]*\).*/\1/p' include/mcnn/core.h)
MAJOR   := $(call version_part,MAJOR)
VERSION := $(MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME  := libmcnn.so.$(MAJOR)

LIB_SRC   := $(sort $(wildcard lib/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
APP_COMMON_SRC := $(sort $(wildcard apps/common/*.c))
APP_COMMON_OBJ := $(APP_COMMON_SRC:%.c=$(BUILD)/obj/%.o)
APP_SRC   := $(sort $(wildcard apps/*.c))
APPS      := $(APP_SRC:apps/%.c=$(BUILD)/mcnn-%)
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TESTS     := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCHES   := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
EXAMPLE_SRC := $(sort $(wildcard docs/examples/*.c))
EXAMPLES  := $(EXAMPLE_SRC:docs/examples/%.c=$(BUILD)/examples/%)

# OpenBLAS is used only by the benchmarks, and only when it is installed.
OPENBLAS_LIB := $(firstword $(wildcard /usr/lib/*/libopenblas.so /usr/lib/libopenblas.so))
ifneq ($(OPENBLAS_LIB),)
  BENCH_BLAS := -DMCNN_BENCH_OPENBLAS -lopenblas
endif

.PHONY: all test test-full bench clean install uninstall
# Keep the apps' object files (make would delete them as intermediates and rebuild each time).
.SECONDARY:
all: $(BUILD)/libmcnn.a $(BUILD)/libmcnn.so $(BUILD)/$(SONAME) $(APPS) $(EXAMPLES)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libmcnn.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The same SONAME as the installed copy; the link named after it lets a program linked with
# -L$(BUILD) -lmcnn run with LD_LIBRARY_PATH=$(BUILD).
$(BUILD)/libmcnn.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/$(SONAME): $(BUILD)/libmcnn.so
	ln -sf libmcnn.so $@

$(BUILD)/mcnn-%: $(BUILD)/obj/apps/%.o $(APP_COMMON_OBJ) $(BUILD)/libmcnn.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/mcnn_test.h $(BUILD)/libmcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(BUILD)/libmcnn.a $(LDLIBS)

$(BUILD)/tests/test_readme $(BUILD)/tests/test_install: tests/readme_example.h
# The shot-model experiment is tested on a small version by including it.
$(BUILD)/tests/test_shot_learning: bench/shot_learning.c
# The learner's ViT is tested by including it.
$(BUILD)/tests/test_tiny_vit: docs/examples/tiny_vit.c

# The learner's examples: single files that read top to bottom (docs/examples/).
$(BUILD)/examples/%: docs/examples/%.c $(BUILD)/libmcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmcnn.a $(LDLIBS)

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

# ---- install ---------------------------------------------------------------------------------
# Installs this build (OPENMP=0 installs the build without OpenMP, and its libmcnn.pc says so).
# libmcnn.pc: Libs.private carries -lm and the OpenMP flag, so `pkg-config --static` links the
# static library with no flag to remember; Libs carries -Wl,-rpath,libdir unless libdir is one
# the loader searches anyway, so programs run without LD_LIBRARY_PATH or ldconfig.
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
ifeq ($(OPENMP),1)
  PC_OPENMP := -fopenmp
endif
ifeq ($(filter $(LIBDIR),/lib /lib64 /usr/lib /usr/lib64),)
  PC_RPATH := -Wl,-rpath,$${libdir}
endif
HEADERS := $(sort $(wildcard include/mcnn/*.h))
# Paths in libmcnn.pc are written from ${prefix}, so `pkg-config --define-variable=prefix=DIR`
# finds a copy installed with DESTDIR or moved elsewhere.
under_prefix = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

$(BUILD)/libmcnn.pc: FORCE
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(call under_prefix,$(LIBDIR))' \
	  'includedir=$(call under_prefix,$(INCLUDEDIR))' '' \
	  'Name: libmcnn' \
	  'Description: pure-C neural networks for vision and vision-language models' \
	  'Version: $(VERSION)' \
	  'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} $(PC_RPATH) -lmcnn' \
	  'Libs.private: -lm $(PC_OPENMP)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

install: all $(BUILD)/libmcnn.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(INCLUDEDIR)/mcnn
	install -m 644 include/mcnn.h $(DESTDIR)$(INCLUDEDIR)/mcnn.h
	install -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/mcnn
	install -m 644 $(BUILD)/libmcnn.a $(DESTDIR)$(LIBDIR)/libmcnn.a
	install -m 755 $(BUILD)/libmcnn.so $(DESTDIR)$(LIBDIR)/libmcnn.so.$(VERSION)
	ln -sf libmcnn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libmcnn.so
	install -m 644 $(BUILD)/libmcnn.pc $(DESTDIR)$(PKGCONFIGDIR)/libmcnn.pc
	install -m 755 $(APPS) $(DESTDIR)$(BINDIR)

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/mcnn.h $(HEADERS:include/%=$(DESTDIR)$(INCLUDEDIR)/%)
	-rmdir $(DESTDIR)$(INCLUDEDIR)/mcnn 2>/dev/null
	rm -f $(DESTDIR)$(LIBDIR)/libmcnn.a $(DESTDIR)$(LIBDIR)/libmcnn.so.$(VERSION) \
	  $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libmcnn.so \
	  $(DESTDIR)$(PKGCONFIGDIR)/libmcnn.pc $(APPS:$(BUILD)/%=$(DESTDIR)$(BINDIR)/%)

.PHONY: FORCE
FORCE:

-include $(LIB_OBJ:.o=.d) $(APP_COMMON_OBJ:.o=.d)
