// One record of a chat format -> a validated Conversation.
#pragma once

#include "datasets/sample_error.h"

namespace st::datasets {

/// ctx.format is one of messages, sharegpt, alpaca, prompt_completion.
/// Throws SampleError for a bad sample.
Conversation convert_conversation(const Json& record, const RecordContext& ctx);

}  // namespace st::datasets
