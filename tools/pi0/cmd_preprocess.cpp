// pi0 preprocess: an image exactly as the model will see it (docs/model.md §6.3): resize-with-pad to the
// model's size and scaling to [-1, 1], written as safetensors for comparison with other engines.
#include <cstdio>

#include "cli_util.h"
#include "commands.h"
#include "io/safetensors.h"
#include "policy/image.h"

namespace pi0::cli {

namespace {

// `pillow` is openpi's server pipeline (ResizeImages, then x/255·2−1): what a Policy feeds the
// model. `torch` is openpi's PyTorch in-model fallback on the float image.
std::vector<std::pair<std::string, Tensor>> process(const ImageU8& img, const std::string& suffix, int H, int W,
                                                    const std::string& method) {
  std::vector<std::pair<std::string, Tensor>> out;
  if (method == "pillow") {
    const ImageU8 r = resize_with_pad_pillow(img, H, W);
    Tensor u8 = Tensor::zeros(DType::U8, {H, W, 3});
    std::copy(r.pixels.begin(), r.pixels.end(), u8.data_mut<uint8_t>());
    out.emplace_back("image" + suffix, image_to_model_input(r));
    out.emplace_back("image_u8" + suffix, std::move(u8));
  } else {
    out.emplace_back("image" + suffix, resize_with_pad_torch(img, H, W));
  }
  return out;
}

}  // namespace

void add_preprocess(CLI::App& app) {
  auto* cmd = app.add_subcommand("preprocess", "Write an image as the model sees it: resize-with-pad, [-1, 1], F32 [3, H, W]");
  struct Args { std::string image, case_file, size, out, method = "pillow"; };
  auto a = std::make_shared<Args>();
  auto* img = cmd->add_option("--image", a->image, "PNG or JPEG file (RGB)");
  auto* cs = cmd->add_option("--case", a->case_file, "safetensors with uint8 [h, w, 3] tensors image_u8.<i> (golden format)");
  img->excludes(cs);
  cmd->add_option("--size", a->size, "model image size H,W (e.g. 224,224)")->required();
  cmd->add_option("--out", a->out, "output .safetensors: image[.<i>] F32 [3, H, W] (+ image_u8[.<i>] for pillow)")->required();
  cmd->add_option("--resize", a->method, "pillow: openpi's ResizeImages (default, what the policy does); "
                                         "torch: openpi's PyTorch in-model bilinear")
      ->check(CLI::IsMember({"pillow", "torch"}))->capture_default_str();
  cmd->callback([a] {
    if (a->image.empty() && a->case_file.empty())
      throw Error(ErrorInfo{.message = "give --image FILE or --case FILE", .field = "--image"});
    int H = 0, W = 0;
    parse_size(a->size, &H, &W);
    std::vector<std::pair<std::string, Tensor>> out;
    if (!a->image.empty()) {
      out = process(decode_image_file(a->image), "", H, W, a->method);
    } else {
      auto f = SafeTensorsFile::open(a->case_file);
      for (const auto& e : f->entries()) {
        if (e.name.rfind("image_u8.", 0) != 0) continue;
        auto part = process(image_from_tensor(f->tensor(e), e.name), e.name.substr(8), H, W, a->method);
        out.insert(out.end(), part.begin(), part.end());
      }
      if (out.empty())
        throw Error(ErrorInfo{.message = "no image_u8.<i> tensors in the case file", .file = a->case_file, .expected = "image_u8.0, ..."});
    }
    write_safetensors(a->out, out, {{"resize", a->method}, {"target_height", std::to_string(H)},
                                    {"target_width", std::to_string(W)}});
    std::printf("wrote %zu tensors (%s resize to %dx%d) to %s\n", out.size(), a->method.c_str(), H, W, a->out.c_str());
  });
}

}  // namespace pi0::cli
