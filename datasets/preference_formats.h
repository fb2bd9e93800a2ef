// One record of a preference format -> a validated PreferencePair.
#pragma once

#include "datasets/sample_error.h"

namespace st::datasets {

/// ctx.format is one of preference, preference_transcripts,
/// llamafactory_ranking, openai_preference. Throws SampleError.
PreferencePair convert_preference(const Json& record, const RecordContext& ctx);

}  // namespace st::datasets
