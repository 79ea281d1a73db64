// placeholder: filled by the loss op family
#pragma once
