// placeholder: filled by the softmax op family
#pragma once
