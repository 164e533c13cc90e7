/* libmcnn: a pure-C neural network library for vision and vision-language models.
 * One header for users; the topic headers under mcnn/ can also be included alone. */
#ifndef MCNN_H
#define MCNN_H

#include "mcnn/core.h"
#include "mcnn/gemm.h"
#include "mcnn/gradcheck.h"
#include "mcnn/lowp.h"
#include "mcnn/ops.h"
#include "mcnn/optim.h"
#include "mcnn/safetensors.h"
#include "mcnn/utf8.h"
#include "mcnn/json.h"
#include "mcnn/image.h"
#include "mcnn/shots.h"
#include "mcnn/preprocess.h"
#include "mcnn/params.h"
#include "mcnn/session.h"
#include "mcnn/vit.h"
#include "mcnn/resnet.h"
#include "mcnn/clip.h"
#include "mcnn/tokenizer.h"
#include "mcnn/data.h"
#include "mcnn/classifier.h"
#include "mcnn/model_preprocess.h"
#include "mcnn/train.h"
#include "mcnn/shot_model.h"

#endif
