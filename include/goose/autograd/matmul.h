// placeholder: filled by the matmul op family
#pragma once
