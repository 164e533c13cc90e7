# libmcnn build.  Switches: OPENMP=0|1 (default 1), SANITIZE=1 (address,undefined) or
# SANITIZE=thread (ThreadSanitizer: use with OPENMP=0, libgomp is not instrumented), NATIVE=1
# (-march=native), DEBUG=1 (-O0 -g, internal asserts), MPI=1 (also mcnn-train over Open MPI, as
# build/mpi/mcnn-train next to the plain one; needs mpicc: Debian's libopenmpi-dev).  Each switch
# combination builds into its
# own folder under build/, so switching never mixes objects; the default is build/ itself.
# `make install PREFIX=/usr/local DESTDIR=` installs that build; `make uninstall` removes it.
CC      ?= cc
OPENMP  ?= 1
SANITIZE ?= 0
NATIVE  ?= 0
DEBUG   ?= 0
MPI     ?= 0

BUILD := build
# clang's objects go to their own folder, so switching compilers never mixes them either
ifneq ($(findstring clang,$(CC)),)
  BUILD := $(BUILD)/clang
endif
ifeq ($(OPENMP),0)
  BUILD := $(BUILD)/noomp
endif
ifeq ($(SANITIZE),1)
  BUILD := $(BUILD)/sanitize
endif
ifeq ($(SANITIZE),thread)
  BUILD := $(BUILD)/tsan
endif
ifeq ($(NATIVE),1)
  BUILD := $(BUILD)/native
endif
ifeq ($(DEBUG),1)
  BUILD := $(BUILD)/debug
endif

CFLAGS  := -std=c11 -Wall -Wextra -fPIC -fvisibility=hidden -MMD -MP -Iinclude
LDLIBS  := -lm
# Values are IEEE either way (lib/ never reads errno or FP flags); without them GCC will not
# vectorise lib/ops/vmath.h's range checks (a clamped path folds to a constant that overflows,
# "could trap": GELU ran scalar on AVX2, 28 ns an element instead of 4) nor AdamW's sqrtf (a
# branch to set errno).  clang's default already has no trapping math.
CFLAGS  += -fno-trapping-math -fno-math-errno
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
ifeq ($(SANITIZE),thread)
  CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=thread
endif
ifeq ($(NATIVE),1)
  CFLAGS += -march=native
endif
# The apps are clients of the public API (include/ only); the library and its tests also see the
# internal headers under lib/.
APP_CFLAGS := $(CFLAGS)
CFLAGS     += -Ilib

# The version lives in include/mcnn/core.h only; the shared library is named after it.
version_part = $(shell sed -n 's/^\#define MCNN_VERSION_$(1) \([0-9]*\).*/\1/p' include/mcnn/core.h)
MAJOR   := $(call version_part,MAJOR)
VERSION := $(MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME  := libmcnn.so.$(MAJOR)

LIB_SRC   := $(sort $(wildcard lib/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
APP_COMMON_SRC := $(sort $(wildcard apps/common/*.c))
APP_COMMON_OBJ := $(APP_COMMON_SRC:%.c=$(BUILD)/obj/%.o)
# mcnn-train's parts (apps/train/*.c), linked into each build of it
TRAIN_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard apps/train/*.c)))
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
# mcnn-classify's own parts (apps/classify/*.c) besides apps/classify.c
CLASSIFY_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard apps/classify/*.c)))
APP_SRC   := $(sort $(wildcard apps/*.c))
APPS      := $(APP_SRC:apps/%.c=$(BUILD)/mcnn-%)
# mcnn-shots is apps/shots.c plus one file per subcommand in apps/shots/
SHOTS_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard apps/shots/*.c)))
ifeq ($(MPI),1)
  APPS += $(BUILD)/mpi/mcnn-train
endif
# The same apps linked against libmcnn.so (tests/test_apps_api.c: they need nothing unexported).
SHARED_APPS := $(APP_SRC:apps/%.c=$(BUILD)/shared-apps/mcnn-%)
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

.PHONY: all test test-full bench clean install uninstall shared-apps
# Keep the apps' object files (make would delete them as intermediates and rebuild each time).
.SECONDARY:
all: $(BUILD)/libmcnn.a $(BUILD)/libmcnn.so $(BUILD)/$(SONAME) $(APPS) $(EXAMPLES)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/apps/%.o: apps/%.c
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) -c $< -o $@

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
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS)
# the apps made of several files: their parts, in every variant that links them
$(BUILD)/mcnn-train $(BUILD)/shared-apps/mcnn-train $(BUILD)/mpi/mcnn-train: $(TRAIN_OBJ)
$(BUILD)/mcnn-classify $(BUILD)/shared-apps/mcnn-classify: $(CLASSIFY_OBJ)
$(BUILD)/mcnn-shots $(BUILD)/shared-apps/mcnn-shots: $(SHOTS_OBJ)

ifeq ($(MPI),1)
$(BUILD)/obj/apps/mpi/%.o: apps/mpi/%.c
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(MPI_CFLAGS) -c $< -o $@

$(BUILD)/mpi/mcnn-train: $(BUILD)/obj/apps/train.o $(MPI_TRAIN_OBJ) $(BUILD)/libmcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(MPI_LIBS) $(LDLIBS)
endif

# rpath $ORIGIN/..: they find $(BUILD)/libmcnn.so.MAJOR wherever the build folder is.
$(BUILD)/shared-apps/mcnn-%: $(BUILD)/obj/apps/%.o $(APP_COMMON_OBJ) $(BUILD)/$(SONAME)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) -L$(BUILD) -lmcnn '-Wl,-rpath,$$ORIGIN/..' $(LDLIBS)

shared-apps: $(SHARED_APPS)

$(BUILD)/tests/%: tests/%.c tests/mcnn_test.h $(BUILD)/libmcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(BUILD)/libmcnn.a $(LDLIBS)

$(BUILD)/tests/test_readme $(BUILD)/tests/test_install: tests/readme_example.h
# The Python binding's test runs apps/python/libmcnn.py on this build's shared library.
$(BUILD)/tests/test_python: tests/readme_example.h $(BUILD)/libmcnn.so
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
test: all $(SHARED_APPS) $(TESTS)
	@sh tests/run.sh $(BUILD)

# Full-size models too (ViT-B/16, ResNet-50, CLIP ViT-B/32, and OpenAI's CLIP archive layout for
# ViT-B/32, ViT-L/14, ViT-L/14@336px; random weights, official key names),
# compared with PyTorch's logits when Debian's python3-torch is installed.  Slow: not in `test`.
MCNN_FULL_DIR ?= $(BUILD)/full
test-full: all $(TESTS)
	@if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then \
	  MCNN_FULL_DIR=$(MCNN_FULL_DIR) /usr/bin/python3 tests/ref/gen_full_size.py && \
	  MCNN_FULL_DIR=$(MCNN_FULL_DIR) /usr/bin/python3 tests/ref/gen_full_clip.py; \
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

# ---- fuzzing: tests/fuzz/, docs/fuzzing.md ----------------------------------------------------
# Each tests/fuzz/fuzz_<driver>.c builds twice: with tests/fuzz/replay_main.c as
# $(BUILD)/tests/test_fuzz_<driver>, which `make test` runs over the seeds and
# tests/fuzz/regressions/<driver>/ (any compiler, any switches); and, by `make fuzz`, with clang's
# libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer as build/fuzz/fuzz_<driver>.
# `make fuzz-run FUZZ_SECONDS=N` fuzzes each driver for N seconds, one after another
# (FUZZ_DRIVERS="png jpeg" for some only); new inputs go to build/fuzz/corpus/<driver>/, crashes
# to build/fuzz/artifacts/<driver>/.
FUZZ_DRIVERS ?= $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(filter-out tests/fuzz/fuzz_util.c,$(wildcard tests/fuzz/fuzz_*.c))))
FUZZ_HEADERS := $(wildcard tests/fuzz/*.h)
FUZZ_REPLAYS := $(FUZZ_DRIVERS:%=$(BUILD)/tests/test_fuzz_%)
FUZZ_SEEDS   := $(BUILD)/fuzz-seeds/.made
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -O1 -g -fno-omit-frame-pointer -fopenmp-simd -Iinclude -Ilib \
                -Itests/fuzz -Wno-pass-failed -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
.PHONY: fuzz fuzz-seeds fuzz-run

test: $(FUZZ_REPLAYS) $(FUZZ_SEEDS)

$(BUILD)/tests/test_fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c tests/fuzz/fuzz_util.c \
                            $(FUZZ_HEADERS) $(BUILD)/libmcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/fuzz -DFUZZ_NAME='"$*"' $(LDFLAGS) -o $@ $< tests/fuzz/replay_main.c \
	    tests/fuzz/fuzz_util.c $(BUILD)/libmcnn.a $(LDLIBS)

$(BUILD)/tests/make_fuzz_seeds: tests/fuzz/make_seeds.c $(BUILD)/libmcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmcnn.a $(LDLIBS)

fuzz-seeds: $(FUZZ_SEEDS)
$(FUZZ_SEEDS): tests/fuzz/make_seeds.sh $(BUILD)/tests/make_fuzz_seeds \
               $(wildcard tests/data/*.safetensors tests/data/*/* weights/*.safetensors weights/samples/*)
	sh tests/fuzz/make_seeds.sh $(BUILD)/fuzz-seeds $(BUILD)/tests/make_fuzz_seeds
	@touch $@

# the library again, instrumented for libFuzzer's coverage, without OpenMP
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libmcnn.a: $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/obj/tests/fuzz/fuzz_util.o $(FUZZ_DIR)/libmcnn.a \
                    $(FUZZ_HEADERS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/obj/tests/fuzz/fuzz_util.o \
	    $(FUZZ_DIR)/libmcnn.a -lm

fuzz: $(FUZZ_DRIVERS:%=$(FUZZ_DIR)/fuzz_%) $(FUZZ_SEEDS)

# Each driver in turn, its log in build/fuzz/logs/; a crash or hang stops that driver only, and
# the run fails at the end naming them.
fuzz-run: fuzz
	@failed=""; mkdir -p $(FUZZ_DIR)/logs; for d in $(FUZZ_DRIVERS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$d $(FUZZ_DIR)/artifacts/$$d; \
	    reg=tests/fuzz/regressions/$$d; [ -d $$reg ] || reg=; \
	    dict=tests/fuzz/$$d.dict; [ -f $$dict ] && dict=-dict=$$dict || dict=; \
	    echo "fuzz-run: $$d for $(FUZZ_SECONDS) s"; \
	    MCNN_SHARED=$${MCNN_SHARED:-../shared} $(FUZZ_DIR)/fuzz_$$d -max_total_time=$(FUZZ_SECONDS) \
	        -timeout=10 -print_final_stats=1 $$dict -artifact_prefix=$(FUZZ_DIR)/artifacts/$$d/ \
	        $(FUZZ_DIR)/corpus/$$d $(BUILD)/fuzz-seeds/$$d $$reg > $(FUZZ_DIR)/logs/$$d.log 2>&1 \
	        || failed="$$failed $$d"; \
	    grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|.*Test unit written)' \
	        $(FUZZ_DIR)/logs/$$d.log; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-run: found crashes in:$$failed (see $(FUZZ_DIR)/artifacts/)"; exit 1; fi

-include $(FUZZ_DIR)/obj/lib/*/*.d $(FUZZ_DIR)/obj/tests/fuzz/*.d

-include $(LIB_OBJ:.o=.d) $(APP_COMMON_OBJ:.o=.d) $(TRAIN_OBJ:.o=.d) $(CLASSIFY_OBJ:.o=.d) \
         $(SHOTS_OBJ:.o=.d) $(APP_SRC:%.c=$(BUILD)/obj/%.d)
